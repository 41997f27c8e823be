"""The machinery of awdlstm's typed configs: a field with its one-line description and rule,
coercion of TOML and command-line values to the declared type, and validation on creation.

Every field is declared with ``param(default, doc, check)``: a one-line description and
the rule it must satisfy, checked when the dataclass is created, so a bad value fails at
once with a message naming the field and what would be valid. Each package owns the
section it reads (data/config.py, model/config.py, config.py for training); this module
depends on nothing of theirs.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import field
from typing import Any

from .errors import AwdlstmError

# Validation rules: name -> (predicate, what is valid).
_CHECKS = {
    "prob": (lambda v: 0.0 <= v < 1.0, "a probability in [0, 1)"),
    "positive": (lambda v: v > 0, "a positive number"),
    "nonneg": (lambda v: v >= 0, "a non-negative number"),
    "unit": (lambda v: 0.0 < v <= 1.0, "a number in (0, 1]"),
}


def param(default: Any, doc: str, check: str | tuple | None = None):
    """A config field with its one-line description and validation rule. ``check`` is a
    rule name from ``_CHECKS`` or a tuple of allowed values."""
    kw = {"default_factory": lambda: list(default)} if isinstance(default, list) else {"default": default}
    return field(metadata={"doc": doc, "check": check}, **kw)


def _coerce(value: Any, typ: Any, where: str) -> Any:
    """Convert TOML/CLI values to the field's declared type (given as a string annotation)."""
    try:
        if typ == "bool":
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                return value.lower() in ("true", "1", "yes")
            return bool(value)
        if typ == "int":
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if typ == "float":
            return float(value)
        if typ == "str":
            return str(value)
        if typ == "list[int]":
            if isinstance(value, str):
                value = [v for v in value.replace(",", " ").split() if v]
            return [int(v) for v in value]
        if typ == "list[str]":
            if isinstance(value, str):
                value = [v for v in value.replace(",", " ").split() if v]
            return [str(v) for v in value]
    except (TypeError, ValueError):
        pass
    else:
        return value
    raise AwdlstmError(f"{where}={value!r} is not a valid {typ}")


class Validated:
    """Mixin: coerce and check every field after ``__init__``."""

    def __post_init__(self):
        section = type(self).SECTION
        for f in dataclasses.fields(self):
            where = f"{section}.{f.name}"
            value = _coerce(getattr(self, f.name), f.type, where)
            object.__setattr__(self, f.name, value)
            check = f.metadata.get("check")
            if check is None or value is None:
                continue
            if isinstance(check, tuple):
                if value not in check:
                    raise AwdlstmError(f"{where}={value!r} is not valid; choose one of: {', '.join(map(str, check))}")
                continue
            ok, valid = _CHECKS[check]
            values = value if isinstance(value, list) else [value]
            if not all(ok(v) for v in values):
                raise AwdlstmError(f"{where}={value!r} is out of range; it must be {valid}")
        self.validate()

    def validate(self) -> None:
        """Cross-field rules; overridden where a section has them."""

    @classmethod
    def docs(cls) -> dict[str, str]:
        return {f.name: f.metadata["doc"] for f in dataclasses.fields(cls)}


def parse_value(text: str) -> Any:
    """A TOML value (number, bool, list, quoted string), else the raw text as a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides_to(cls, overrides: list[str]) -> dict:
    """``key=value`` overrides of one section's dataclass ``cls`` (``key`` or
    ``<section>.key``), as a dict of its fields."""
    values = {}
    for item in overrides:
        key, eq, value = item.partition("=")
        name = key.strip().removeprefix(f"{cls.SECTION}.")
        if not eq or not name_in(cls, name):
            valid = ", ".join(f.name for f in dataclasses.fields(cls))
            raise AwdlstmError(f"--set {item!r}: expected key=value with a key of [{cls.SECTION}]: {valid}")
        values[name] = parse_value(value)
    return values


def name_in(cls, name: str) -> bool:
    return any(f.name == name for f in dataclasses.fields(cls))
