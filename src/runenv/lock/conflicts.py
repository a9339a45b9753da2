"""Read uv's "No solution found" explanation for the one case an override settles.

uv (PubGrub) explains a failed resolution as a chain of sentences built from facts such as
`cudf-cu12==25.6.0 depends on pyarrow{platform_machine == 'x86_64'}>=14.0.0,<20.0.0a0`
(a marker in braces), `all versions of rtextra depend on rtarrow[fast]<2` (extras in
brackets) and `you require rtarrow==2.0`. When a package the variant pins (or bounds) is one
another package's range excludes, a uv override forcing the variant's own specifier resolves
it; `conflicts` finds those, `disagreement` names the shape no override of the variant's
settles (two packages wanting opposite ranges of a third the variant does not pin).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
# `>=14.0.0,<20.0.0a0`: uv joins a range with commas and no spaces, so a comma followed by a
# space ends it (`..., we can conclude`).
_SPEC = r"(?:===?|!=|~=|<=?|>=?)[^\s,]+(?:,(?:===?|!=|~=|<=?|>=?)[^\s,]+)*"
_FACT = re.compile(
    rf"(?P<all>all versions of )?(?P<who>{_NAME})(?P<who_spec>{_SPEC})?"
    rf" depends? on (?P<dep>{_NAME})(?:\[[^\]]*\]|\{{[^}}]*\}})*(?P<spec>{_SPEC})?"
)


@dataclass(frozen=True)
class Fact:
    """One `WHO depends on DEP SPEC` of uv's explanation."""

    who: str  # a name
    who_text: str  # as shown: `cudf-cu12==25.6.0`, `rtmid (every version)`
    dep: str  # a canonical name
    spec: str  # `>=14.0.0,<20.0.0a0`, "" for any version


@dataclass(frozen=True)
class Conflict:
    """A requirement of the variant that another package's declared range excludes."""

    name: str  # as the variant spells it: `pyarrow`
    asked: str  # the variant's requirement without marker: `pyarrow==24.0.0`
    specifier: str  # the variant's specifier: `==24.0.0`
    who: str  # the package whose range excludes it: `cudf-cu12==25.6.0`
    needs: str  # `pyarrow>=14.0.0,<20.0.0a0`
    via: tuple[str, ...] = ()  # packages between `who` and the range: (`rmm-cu12==25.6.0`,)

    @property
    def override_value(self) -> str:
        """The `overrides` value for the config: a version for a pin, else the specifier."""
        spec = self.specifier
        if spec.startswith("==") and "," not in spec and "*" not in spec:
            return spec[2:]
        return spec

    @property
    def override_line(self) -> str:
        """The uv override line (`pyarrow==24.0.0`) the config value stands for."""
        return f"{self.name}{self.specifier}"

    @property
    def pinned(self) -> bool:
        return self.specifier.startswith("==") and "," not in self.specifier

    def sentence(self) -> str:
        through = f" (through {', '.join(self.via)})" if self.via else ""
        verb = "pins" if self.pinned else "asks for"
        return f"{self.who} needs {self.needs}{through}, but the variant {verb} {self.asked}"


def facts(uv_output: str) -> list[Fact]:
    """Every `depends on` fact of uv's explanation, in order (derived ones included)."""
    flat = " ".join(uv_output.split())
    found = []
    for m in _FACT.finditer(flat):
        spec = (m.group("spec") or "").rstrip(".")
        who_spec = (m.group("who_spec") or "").rstrip(".")
        who_text = m.group("who") + (who_spec if who_spec else "")
        if m.group("all") or not who_spec:
            who_text = f"{m.group('who')} (every version)"
        found.append(Fact(m.group("who"), who_text, canonicalize_name(m.group("dep")), spec))
    return found


def _direct(requirements: Iterable[str]) -> dict[str, Requirement]:
    """The variant's requirements by canonical name (git ones and unparsable ones left out)."""
    out: dict[str, Requirement] = {}
    for text in requirements:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if req.url is None:
            out[canonicalize_name(req.name)] = req
    return out


def _excludes(specifier: SpecifierSet, needs: str) -> bool:
    """Whether the range `needs` leaves out the variant's `specifier`: certain for a pin;
    for a range, true unless one of the versions either side names satisfies both."""
    try:
        wanted = SpecifierSet(needs)
    except InvalidSpecifier:
        return False
    pins = [s for s in specifier if s.operator in ("==", "===") and "*" not in s.version]
    versions = []
    for spec in pins or (*specifier, *wanted):
        try:
            versions.append(Version(spec.version.rstrip(".*")))
        except InvalidVersion:
            continue
    if pins:
        return not any(wanted.contains(v, prereleases=True) for v in versions)
    return not any(
        specifier.contains(v, prereleases=True) and wanted.contains(v, prereleases=True)
        for v in versions
    )


def conflicts(uv_output: str, requirements: Iterable[str]) -> list[Conflict]:
    """The variant's requirements that a range in uv's explanation excludes, one per package.

    The package named is the variant's own requirement that brings the range in when uv's
    explanation shows it (`rttop==1.0`, through `rtmid`), else the one declaring it.
    """
    direct = _direct(requirements)
    all_facts = facts(uv_output)
    by_dep: dict[str, list[Fact]] = {}
    for fact in all_facts:
        req = direct.get(fact.dep)
        if req is None or not req.specifier or not fact.spec:
            continue
        if canonicalize_name(fact.who) == fact.dep or not _excludes(req.specifier, fact.spec):
            continue
        by_dep.setdefault(fact.dep, []).append(fact)
    found = []
    for dep, shown in by_dep.items():
        req = direct[dep]
        top = [f for f in shown if canonicalize_name(f.who) in direct]
        between = [f for f in shown if canonicalize_name(f.who) not in direct]
        if top:
            # The last is uv's broadest conclusion (`all versions of rtcudf depend on ...`).
            fact = top[-1]
            who = _asked(direct[canonicalize_name(fact.who)])
            via = tuple(dict.fromkeys(f.who for f in between))
        else:
            fact = between[-1]
            who = fact.who_text
            users = _users(all_facts, fact.who, direct)
            via = ()
            if users:  # shown the other way round: the variant's package, then the chain
                who, via = users[0], (fact.who,)
        needs = f"{req.name}{fact.spec}"
        found.append(Conflict(req.name, _asked(req), str(req.specifier), who, needs, via))
    return found


def _users(all_facts: list[Fact], name: str, direct: dict[str, Requirement]) -> list[str]:
    """The variant's requirements that uv's facts show depending on `name`, at any depth."""
    seen, todo, out = {canonicalize_name(name)}, [canonicalize_name(name)], []
    while todo:
        current = todo.pop()
        for fact in all_facts:
            who = canonicalize_name(fact.who)
            if fact.dep == current and who not in seen:
                seen.add(who)
                todo.append(who)
                if who in direct:
                    out.append(_asked(direct[who]))
    return out


def disagreement(uv_output: str, requirements: Iterable[str]) -> str | None:
    """Two packages needing ranges of a third that the variant does not pin: `rtright (every
    version) needs rtnum>=2 and rtleft (every version) needs rtnum<2`, or None."""
    direct = _direct(requirements)
    by_dep: dict[str, list[Fact]] = {}
    for fact in facts(uv_output):
        if fact.spec and canonicalize_name(fact.who) != fact.dep:
            by_dep.setdefault(fact.dep, []).append(fact)
    for dep, shown in by_dep.items():
        req = direct.get(dep)
        if req is not None and req.specifier:
            continue
        whos = list(dict.fromkeys((f.who_text, f.spec) for f in shown))
        if len({w for w, _ in whos}) >= 2:
            return " and ".join(f"{w} needs {dep}{s}" for w, s in whos[:2])
    return None


def _asked(req: Requirement) -> str:
    """A requirement as the variant asks for it, without its marker."""
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    return f"{req.name}{extras}{req.specifier}"


# `torch==2.7.0 has no wheels with a matching platform tag (e.g., `macosx_10_13_x86_64`)`,
# `tensorflow>=2.8.0,<=2.15.1 has no wheels with a matching Python ABI tag (e.g., `cp312`)`,
# `rtwin==1.0 has no usable wheels`: uv found no file of the package for the target.
_NO_FILE = re.compile(
    rf"(?P<name>{_NAME})(?P<spec>{_SPEC})? has no (?:usable wheels|wheels with a matching "
    r"(?:platform tag|Python ABI tag|Python implementation tag)(?: \(e\.g\., `[^`]+`\))?)"
)


def unavailable(uv_output: str, requirements: Iterable[str]) -> dict[str, str]:
    """The variant's requirements that cannot be installed on the target because uv found
    no file for them, or for a package they depend on (at any depth uv's explanation shows):
    canonical name -> why, e.g. `sccoda` -> `needs tensorflow>=2.8, which has no ...`."""
    direct = _direct(requirements)
    flat = " ".join(uv_output.split())
    missing = {canonicalize_name(m.group("name")): m.group(0) for m in _NO_FILE.finditer(flat)}
    all_facts = facts(uv_output)
    out: dict[str, str] = {}
    for name, sentence in missing.items():
        if name in direct:
            out[name] = f"no file for the platform (uv: {sentence})"
            continue
        needs = next((f"{f.dep}{f.spec}" for f in all_facts if f.dep == name), name)
        for user in _users(all_facts, name, direct):
            user_name = canonicalize_name(Requirement(user).name)
            out.setdefault(
                user_name, f"needs {needs}, which has no file for the platform (uv: {sentence})"
            )
    return out
