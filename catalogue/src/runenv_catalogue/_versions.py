"""PEP 440 versions and version specifiers, standard library only.

Versions are parsed, ordered and matched as `packaging` (what pip uses) does, so that the
catalogue, which cannot depend on it, judges an installed version as pip would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# PEP 440's version grammar, as `packaging.version.VERSION_PATTERN` spells it.
_VERSION = re.compile(
    r"""
    v?
    (?:(?P<epoch>[0-9]+)!)?
    (?P<release>[0-9]+(?:\.[0-9]+)*)
    (?P<pre>[-_.]?(?P<pre_l>alpha|a|beta|b|preview|pre|c|rc)[-_.]?(?P<pre_n>[0-9]+)?)?
    (?P<post>(?:-(?P<post_n1>[0-9]+))|(?:[-_.]?(?P<post_l>post|rev|r)[-_.]?(?P<post_n2>[0-9]+)?))?
    (?P<dev>[-_.]?(?P<dev_l>dev)[-_.]?(?P<dev_n>[0-9]+)?)?
    (?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?
    """,
    re.VERBOSE | re.IGNORECASE,
)
_PRE = {
    "alpha": "a",
    "a": "a",
    "beta": "b",
    "b": "b",
    "c": "rc",
    "rc": "rc",
    "pre": "rc",
    "preview": "rc",
}


class InvalidVersion(ValueError):
    """Not a PEP 440 version."""


@dataclass(frozen=True)
class Version:
    """A PEP 440 version, ordered as `packaging.version.Version` orders them."""

    epoch: int
    release: tuple[int, ...]
    pre: tuple[str, int] | None
    post: int | None
    dev: int | None
    local: tuple[int | str, ...] | None

    @classmethod
    def parse(cls, text: str) -> Version:
        m = _VERSION.fullmatch(text.strip())
        if m is None:
            raise InvalidVersion(f"{text!r} is not a PEP 440 version")
        pre = None
        if m["pre_l"]:
            pre = (_PRE[m["pre_l"].lower()], int(m["pre_n"] or 0))
        post = None
        if m["post"]:
            post = int(m["post_n1"] or m["post_n2"] or 0)
        local = None
        if m["local"]:
            local = tuple(
                int(p) if p.isdigit() else p.lower() for p in re.split(r"[-_.]", m["local"])
            )
        return cls(
            epoch=int(m["epoch"] or 0),
            release=tuple(int(x) for x in m["release"].split(".")),
            pre=pre,
            post=post,
            dev=int(m["dev_n"] or 0) if m["dev"] else None,
            local=local,
        )

    def __str__(self) -> str:
        text = f"{self.epoch}!" if self.epoch else ""
        text += ".".join(map(str, self.release))
        if self.pre:
            text += f"{self.pre[0]}{self.pre[1]}"
        if self.post is not None:
            text += f".post{self.post}"
        if self.dev is not None:
            text += f".dev{self.dev}"
        if self.local:
            text += "+" + ".".join(map(str, self.local))
        return text

    @property
    def public(self) -> Version:
        return Version(self.epoch, self.release, self.pre, self.post, self.dev, None)

    @property
    def base(self) -> Version:
        return Version(self.epoch, self.release, None, None, None, None)

    @property
    def is_prerelease(self) -> bool:
        return self.pre is not None or self.dev is not None

    def key(self) -> tuple[object, ...]:
        """The sort key (`packaging`'s `_cmpkey`, infinities spelt as ranks)."""
        release = list(self.release)
        while len(release) > 1 and release[-1] == 0:
            release.pop()
        if self.pre is None and self.post is None and self.dev is not None:
            pre: tuple[object, ...] = (-1,)  # 1.0.dev0 sorts before 1.0a0
        elif self.pre is None:
            pre = (1,)
        else:
            pre = (0, *self.pre)
        post = (-1,) if self.post is None else (0, self.post)
        dev = (1,) if self.dev is None else (0, self.dev)
        local: tuple[object, ...] = (0,)
        if self.local is not None:  # numbers sort above letters, as in packaging
            local = (1, tuple((1, p, "") if isinstance(p, int) else (0, 0, p) for p in self.local))
        return (self.epoch, tuple(release), pre, post, dev, local)

    def __lt__(self, other: Version) -> bool:
        return self.key() < other.key()

    def __le__(self, other: Version) -> bool:
        return self.key() <= other.key()

    def __gt__(self, other: Version) -> bool:
        return self.key() > other.key()

    def __ge__(self, other: Version) -> bool:
        return self.key() >= other.key()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())


def _split(version: str) -> list[str]:
    """`packaging`'s `_version_split`: epoch, then each release part, pre-releases apart."""
    epoch, _, rest = version.rpartition("!")
    out = [epoch or "0"]
    for item in rest.split("."):
        m = re.fullmatch(r"([0-9]+)((?:a|b|c|rc)[0-9]+)", item)
        out.extend(m.groups() if m else [item])
    return out


def _prefix_match(candidate: Version, prefix: str) -> bool:
    """`candidate` matches `==prefix.*` (candidate's release padded with zeros)."""
    want = _split(str(Version.parse(prefix)))
    have = _split(str(candidate.public))

    def digits(parts: list[str]) -> int:
        run = 0
        while run < len(parts) and parts[run].isdigit():
            run += 1
        return run

    run = digits(have)
    padded = have[:run] + ["0"] * max(0, digits(want) - run) + have[run:]
    return padded[: len(want)] == want


def specifier_contains(op: str, spec: str, candidate: Version) -> bool:
    """Whether `candidate` satisfies the specifier `op spec` (pre-releases allowed: it is an
    installed version, as for `packaging`'s `contains(..., prereleases=True)`)."""
    if op == "===":
        return str(candidate).lower() == spec.lower()
    if op in ("==", "!=") and spec.endswith(".*"):
        found = _prefix_match(candidate, spec[:-2])
        return found if op == "==" else not found
    target = Version.parse(spec)
    if op == "~=":
        release = [str(x) for x in target.release[:-1]]
        epoch = f"{target.epoch}!" if target.epoch else ""
        return candidate >= target and _prefix_match(candidate, epoch + ".".join(release))
    if op in ("==", "!=") and target.local is not None:
        same = candidate == target
        return same if op == "==" else not same
    candidate = candidate.public  # local labels are ignored by every other comparison
    if op in ("==", "!="):
        same = candidate == target
        return same if op == "==" else not same
    if op == "<=":
        return candidate <= target
    if op == ">=":
        return candidate >= target
    if op in ("<", ">") and candidate.key()[:2] != target.key()[:2]:
        return candidate < target if op == "<" else candidate > target
    # The same epoch and release as V: `<V` and `>V` leave out V's own family (PEP 440;
    # `packaging` 26's rules): `<1.0` no 1.0 pre-release, `>1.0` no 1.0.post release.
    if op == "<":
        if target.pre is not None or target.dev is not None:
            return candidate < target
        if target.post is None:
            return False
        own_dev = (
            candidate.pre is None and candidate.post == target.post and candidate.dev is not None
        )
        return candidate < target and not own_dev
    if op == ">":
        if target.dev is not None or target.post is not None:
            return candidate > target
        return candidate > target and candidate.pre != target.pre
    raise ValueError(f"unknown operator {op}")


def check_specifier(op: str, spec: str) -> None:
    """InvalidVersion unless `op spec` is a specifier PEP 440 allows (`===` takes anything)."""
    if op == "===":
        return
    if op in ("==", "!=") and spec.endswith(".*"):
        if not re.fullmatch(r"([0-9]+!)?[0-9]+(\.[0-9]+)*", spec[:-2]):
            raise InvalidVersion(f"{op}{spec}: a wildcard follows release numbers only")
        return
    v = Version.parse(spec)
    if v.local is not None and op not in ("==", "!="):
        raise InvalidVersion(f"{op}{spec}: a local version goes with == and != only")
    if op == "~=" and len(v.release) < 2:
        raise InvalidVersion(f"~={spec} needs at least two release parts")
