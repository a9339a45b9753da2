"""Requirements files checked against a runtime's installed distributions, standard library only.

A block venv on an installed-tree runtime installs nothing: it sees the runtime's packages, so
each requirement must already be met there. This module parses the PEP 508 requirements a
requirements file may hold (name, extras, version specifiers, environment markers; `--hash`
options are ignored), compares versions by PEP 440 and evaluates markers against the runtime's
own marker environment, following `packaging` (what pip uses) where it matters. What it cannot
check (other options, includes, URLs, paths, `-e`) is refused, never guessed.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from runenv_catalogue._provision import UsageError

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
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
_SPEC = re.compile(r"\s*(===|~=|==|!=|<=|>=|<|>)\s*([^\s,;()]+)\s*")
_HASH = re.compile(r"\s--hash(?:=|\s+)\S+")
_OPS: dict[str, Callable[[str, str], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    ">": operator.gt,
}
# The marker variables compared as versions; the others compare as strings (packaging's rule).
VERSION_VARIABLES = (
    "implementation_version",
    "platform_release",
    "python_full_version",
    "python_version",
)
MARKER_VARIABLES = (
    "implementation_name",
    "implementation_version",
    "os_name",
    "platform_machine",
    "platform_python_implementation",
    "platform_release",
    "platform_system",
    "platform_version",
    "python_full_version",
    "python_version",
    "sys_platform",
)


class InvalidVersion(ValueError):
    """Not a PEP 440 version."""


def canonical_name(name: str) -> str:
    """A project name as PEP 503 normalises it (`Foo_Bar.baz` -> `foo-bar-baz`)."""
    return re.sub(r"[-_.]+", "-", name).lower()


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


@dataclass(frozen=True)
class Requirement:
    """One requirement of a requirements file: `name[extras] specifiers ; marker`."""

    text: str  # as written (without comment and --hash), for messages
    name: str
    extras: tuple[str, ...]
    specifiers: tuple[tuple[str, str], ...]
    marker: str | None

    @property
    def key(self) -> str:
        return canonical_name(self.name)


def _check_spec(op: str, spec: str) -> None:
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


def parse_requirement(text: str, *, allow_url: bool = False) -> Requirement:
    """A PEP 508 requirement; ValueError says what is wrong with it. A URL requirement
    (`name @ url`) is refused unless `allow_url` (a distribution's own requirement: only its
    name and marker count then)."""
    line = text.strip()
    m = _NAME.match(line)
    if not m:
        raise ValueError("not a requirement (a project name first)")
    name, rest = m.group(), line[m.end() :].lstrip()
    extras: tuple[str, ...] = ()
    if rest.startswith("["):
        close = rest.find("]")
        if close < 0:
            raise ValueError("unclosed [extras]")
        raw = [e.strip() for e in rest[1:close].split(",") if e.strip()]
        if not all(_NAME.fullmatch(e) for e in raw):
            raise ValueError("bad extra name")
        extras = tuple(canonical_name(e) for e in raw)
        rest = rest[close + 1 :].lstrip()
    if rest.startswith("@"):
        if not allow_url:
            raise ValueError("a URL requirement")
        url_marker = re.split(r"\s;", rest, maxsplit=1)
        spec_text, marker = "", url_marker[1] if len(url_marker) > 1 else ""
    else:
        spec_text, _, marker = rest.partition(";")
    spec_text = spec_text.strip()
    if spec_text.startswith("(") and spec_text.endswith(")"):
        spec_text = spec_text[1:-1]
    specifiers: list[tuple[str, str]] = []
    if spec_text.strip():
        for piece in spec_text.split(","):
            sm = _SPEC.fullmatch(piece)
            if sm is None:
                raise ValueError(f"bad version specifier {piece.strip()!r}")
            try:
                _check_spec(sm[1], sm[2])
            except InvalidVersion as exc:
                raise ValueError(f"bad version specifier {piece.strip()!r} ({exc})") from None
            specifiers.append((sm[1], sm[2]))
    marker = marker.strip()
    if marker:
        _Marker(marker).evaluate(dict.fromkeys(MARKER_VARIABLES, "0"), check_only=True)
    return Requirement(line, name, extras, tuple(specifiers), marker or None)


_TOKEN = re.compile(
    r"""\s*(?:
    (?P<paren>[()])
    |(?P<string>'[^']*'|"[^"]*")
    |(?P<op>===|==|!=|<=|>=|~=|<|>|not\s+in\b|in\b)
    |(?P<bool>and\b|or\b)
    |(?P<var>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)


class _Marker:
    """A PEP 508 environment marker, parsed by recursive descent and evaluated as
    `packaging.markers.Marker.evaluate` does."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str]] = []
        pos = 0
        while pos < len(text):
            if not text[pos:].strip():
                break
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                raise ValueError(f"bad marker {text!r} at {text[pos:].strip()!r}")
            kind = m.lastgroup or ""
            self.tokens.append((kind, m[kind]))
            pos = m.end()

    def evaluate(self, env: Mapping[str, str], *, check_only: bool = False) -> bool:
        self.env, self.check_only, self.pos = env, check_only, 0
        result = self._or()
        if self.pos != len(self.tokens):
            raise ValueError(f"bad marker {self.text!r}: unexpected {self.tokens[self.pos][1]!r}")
        return result

    def _next(self, kind: str | None = None) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise ValueError(f"bad marker {self.text!r}: it ends too early")
        token = self.tokens[self.pos]
        if kind is not None and token[0] != kind:
            raise ValueError(f"bad marker {self.text!r}: unexpected {token[1]!r}")
        self.pos += 1
        return token

    def _peek(self, value: str) -> bool:
        return self.pos < len(self.tokens) and self.tokens[self.pos][1] == value

    def _or(self) -> bool:
        result = self._and()
        while self._peek("or"):
            self.pos += 1
            right = self._and()
            result = result or right
        return result

    def _and(self) -> bool:
        result = self._atom()
        while self._peek("and"):
            self.pos += 1
            right = self._atom()
            result = result and right
        return result

    def _atom(self) -> bool:
        if self._peek("("):
            self.pos += 1
            result = self._or()
            self._next("paren")
            return result
        left_var, left = self._value()
        op = " ".join(self._next("op")[1].split())
        right_var, right = self._value()
        if "extra" in (left_var, right_var):  # extras compare by their normalised names
            left, right = canonical_name(left), canonical_name(right)
        if self.check_only:
            return True
        as_version = bool({left_var, right_var} & set(VERSION_VARIABLES))
        return _compare(left, op, right, self.text, as_version=as_version)

    def _value(self) -> tuple[str | None, str]:
        kind, value = self._next()
        if kind == "string":
            return None, value[1:-1]
        if kind != "var":
            raise ValueError(f"bad marker {self.text!r}: unexpected {value!r}")
        if value != "extra" and value not in MARKER_VARIABLES:
            raise ValueError(f"bad marker {self.text!r}: unknown variable {value!r}")
        return value, self.env.get(value, "")


def _compare(left: str, op: str, right: str, marker: str, *, as_version: bool) -> bool:
    if as_version and op not in ("in", "not in"):
        try:
            _check_spec(op, right)
        except InvalidVersion:
            pass  # not a version specifier: a plain comparison of strings
        else:
            try:
                return specifier_contains(op, right, Version.parse(left))
            except InvalidVersion:
                return False  # e.g. a platform_release that is no version: never matches
    if op == "in":
        return left in right
    if op == "not in":
        return left not in right
    if op in _OPS:
        return _OPS[op](left, right)
    raise ValueError(f"marker {marker!r}: cannot compare {left!r} {op} {right!r}")


def evaluate_marker(marker: str, env: Mapping[str, str], extra: str = "") -> bool:
    """Whether `marker` holds in the marker environment `env` with `extra` requested."""
    return _Marker(marker).evaluate({**env, "extra": extra})


def read_requirements(path: Path) -> list[Requirement]:
    """The requirements of a requirements file; UsageError (one line naming the file and line)
    for what cannot be checked against installed packages: options, includes, `-e`, URLs and
    paths. Comments, blank lines, continuations and `--hash` options are fine."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise UsageError(f"{path}: cannot read the requirements file ({reason})") from None
    found: list[Requirement] = []
    for number, line in _logical_lines(text):
        where = f"{path}:{number}"
        if line.startswith("-"):
            raise UsageError(
                f"{where}: {line.split()[0]}: options, includes and -e lines cannot be checked "
                "against an installed runtime's packages: list requirements only"
            )
        try:
            found.append(parse_requirement(_HASH.sub("", " " + line)))
        except ValueError as exc:
            raise UsageError(
                f"{where}: {line!r}: {exc}: write name[extras] specifiers ; marker"
            ) from None
    return found


def _logical_lines(text: str) -> Iterable[tuple[int, str]]:
    """(first line number, line) with `\\` continuations joined and comments dropped."""
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        if not pending:
            start = number
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        line = re.sub(r"(^|\s)#.*$", "", pending + raw).strip()
        pending = ""
        if line:
            yield start, line
    line = re.sub(r"(^|\s)#.*$", "", pending).strip()
    if line:
        yield start, line


@dataclass(frozen=True)
class Installed:
    """One installed distribution: its version, its requirements and its extras."""

    name: str
    version: str
    requires: tuple[str, ...] = ()
    extras: tuple[str, ...] = ()


def unmet(
    requirements: Sequence[Requirement],
    installed: Mapping[str, Installed],
    env: Mapping[str, str],
) -> list[str]:
    """Why each requirement (and what it pulls in: dependencies, requested extras) is not met
    by `installed` (canonical name -> distribution), one phrase each; [] when all are met."""
    problems: list[str] = []
    seen: set[tuple[str, tuple[str, ...]]] = set()
    todo: list[tuple[Requirement, str | None]] = [
        (r, None) for r in requirements if r.marker is None or evaluate_marker(r.marker, env)
    ]  # a requirement whose marker does not hold here is not needed here
    while todo:
        req, parent = todo.pop(0)
        by = f" (needed by {parent})" if parent else ""
        dist = installed.get(req.key)
        if dist is None:
            problems.append(f"{req.text}: {req.name} is not in the runtime{by}")
            continue
        try:
            version = Version.parse(dist.version)
            ok = all(specifier_contains(op, spec, version) for op, spec in req.specifiers)
        except InvalidVersion:  # a legacy version: only === can match it
            ok = all(op == "===" and spec == dist.version for op, spec in req.specifiers)
        if not ok:
            problems.append(f"{req.text}: the runtime has {dist.name} {dist.version}{by}")
            continue
        provided = {canonical_name(e) for e in dist.extras}
        extras = tuple(sorted(e for e in req.extras if e in provided))  # pip ignores others
        if (req.key, extras) in seen:
            continue
        seen.add((req.key, extras))
        for line in dist.requires:
            try:
                sub = parse_requirement(line, allow_url=True)
            except ValueError:
                problems.append(f"{dist.name} {dist.version} requires {line!r}, unreadable")
                continue
            if sub.marker is None or any(
                evaluate_marker(sub.marker, env, e) for e in ("", *extras)
            ):
                todo.append((sub, f"{dist.name} {dist.version}"))
    return problems
