"""PEP 508 environment markers, standard library only.

A marker is parsed by recursive descent and evaluated as `packaging.markers.Marker.evaluate`
does: the variables of VERSION_VARIABLES compare as versions, the others as strings, extras by
their normalised names.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping

from runenv_catalogue._names import canonical_name
from runenv_catalogue._versions import (
    InvalidVersion,
    Version,
    check_specifier,
    specifier_contains,
)

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
        return any(self._operands("or", self._and))

    def _and(self) -> bool:
        return all(self._operands("and", self._atom))

    def _operands(self, joiner: str, operand: Callable[[], bool]) -> list[bool]:
        """The values of a run of `operand`s joined by `joiner`, every one parsed (a list, not
        a short-circuit: a bad term after a deciding one is still an error)."""
        values = [operand()]
        while self._peek(joiner):
            self.pos += 1
            values.append(operand())
        return values

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
            check_specifier(op, right)
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


def check_marker(marker: str) -> None:
    """ValueError unless `marker` is a well-formed marker over known variables (the syntax
    only: nothing is compared)."""
    _Marker(marker).evaluate(dict.fromkeys(MARKER_VARIABLES, "0"), check_only=True)
