"""Typed, validated configuration: data → model → training.

Every field is declared with ``param(default, doc, check)``: a one-line description and
the rule it must satisfy, checked when the dataclass is created, so a bad value fails at
once with a message naming the field and what would be valid.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
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
        if typ == "int | None":
            return None if value in (None, "none", "None", "") else int(value)
    except (TypeError, ValueError):
        pass
    else:
        return value
    raise AwdlstmError(f"{where}={value!r} is not a valid {typ}")


class _Validated:
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


@dataclass
class ModelConfig(_Validated):
    """The language model: sizes, cell, tying and every regularizer (SPEC §2)."""

    SECTION = "model"
    emb_size: int = param(400, "embedding size E; the last layer's output size when tied", "positive")
    hidden_size: int = param(1150, "hidden size H of every LSTM layer but the last (when tied)", "positive")
    num_layers: int = param(3, "number L of stacked single-layer LSTMs", "positive")
    tie_weights: bool = param(True, "share the decoder weight with the embedding (reduced embedding)")
    cell: str = param("lstm", "recurrent layer kind, a name in awdlstm.model.layers.LAYERS")
    dropout_emb: float = param(0.1, "p_e: embedding dropout, whole vocabulary rows per forward", "prob")
    dropout_input: float = param(0.4, "p_i: locked dropout on the embedding output", "prob")
    dropout_hidden: float = param(0.25, "p_h: locked dropout between LSTM layers", "prob")
    dropout_output: float = param(0.4, "p_o: locked dropout on the last LSTM output", "prob")
    weight_drop: float = param(0.5, "p_w: DropConnect on every layer's hidden-to-hidden matrix", "prob")
    locked_dropout: bool = param(True, "share dropout masks over time (False: fresh mask per step, Zaremba)")
    init_range: float = param(0.1, "embedding weights start uniform in [-init_range, init_range]", "positive")

    def validate(self) -> None:
        from .model.layers import LAYERS
        if self.cell not in LAYERS:
            raise AwdlstmError(f"model.cell={self.cell!r} is not valid; choose one of: {', '.join(LAYERS)}")
