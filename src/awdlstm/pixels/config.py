"""The [pixels] settings: a typed dataclass validated on creation, presets as small TOML
files (presets/pixels/), stored in every checkpoint."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import AwdlstmError
from ..model.config import ModelConfig
from ..settings import Validated, apply_overrides_to, param

PRESETS = Path(__file__).resolve().parent.parent / "presets" / "pixels"


@dataclass
class PixelConfig(Validated):
    """A recurrent classifier reading an image one pixel per step."""

    SECTION = "pixels"
    data: str = param("digits", "mnist, digits (scikit-learn's 8x8), or a folder of MNIST IDX files")
    data_dir: str = param("", "folder holding mnist/ (empty: $AWDLSTM_DATA, then the cache)")
    permute: bool = param(False, "read the pixels in a fixed random order (permuted sequential MNIST)")
    permutation_seed: int = param(1, "seed of that order: numpy.random.default_rng(seed).permutation(steps)")
    cell: str = param("lstm", "recurrent layer kind, a name in awdlstm.model.layers.LAYERS")
    hidden_size: int = param(100, "units of every recurrent layer", "positive")
    num_layers: int = param(1, "stacked recurrent layers", "positive")
    zoneout_c: float = param(0.0, "zoneout on the cell state", "prob")
    zoneout_h: float = param(0.0, "zoneout on the hidden state", "prob")
    recurrent_dropout: float = param(0.0, "Semeniuta dropout of the cell update (or the GRU candidate)", "prob")
    batchnorm_steps: int = param(0, "batchnorm-lstm: steps with statistics of their own (0: every step)", "nonneg")
    optimizer: str = param("rmsprop", "rmsprop or adam", ("rmsprop", "adam"))
    lr: float = param(1e-3, "learning rate", "positive")
    rmsprop_alpha: float = param(0.5, "rmsprop: decay of the running mean of squared gradients", "unit")
    clip: float = param(1.0, "gradient-norm clipping (0: off)", "nonneg")
    batch_size: int = param(100, "images per batch", "positive")
    epochs: int = param(100, "passes over the training images", "positive")
    max_minutes: float = param(0.0, "stop after this many minutes of training (0: no limit)", "nonneg")
    eval_batch_size: int = param(500, "images per batch at evaluation", "positive")
    seed: int = param(1, "seed of the weights, the masks and the batch order")

    def validate(self) -> None:
        try:  # a knob the cell cannot use is an error here, as for a language model
            self.model_config()
        except AwdlstmError as e:
            raise AwdlstmError(str(e).replace(" (or a layer of such a kind in model.layer_cells)", "")
                               .replace("model.", "pixels.")) from None

    def model_config(self, steps: int | None = None) -> ModelConfig:
        """The recurrent layers' settings (the registry's knobs, validated as for a language model)."""
        bn = self.batchnorm_steps or (steps or 1) if self.cell == "batchnorm-lstm" else 0
        return ModelConfig(cell=self.cell, emb_size=self.hidden_size, hidden_size=self.hidden_size,
                           num_layers=self.num_layers, zoneout_c=self.zoneout_c, zoneout_h=self.zoneout_h,
                           recurrent_dropout=self.recurrent_dropout, batchnorm_steps=bn, weight_drop=0.0,
                           dropout_emb=0.0, dropout_input=0.0, dropout_hidden=0.0, dropout_output=0.0)


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS.glob("*.toml"))


def pixel_config(preset: str | None = None, sets: list[str] = ()) -> PixelConfig:
    """A preset (presets/pixels/<name>.toml) with ``key=value`` overrides."""
    values: dict = {}
    if preset:
        path = PRESETS / f"{preset}.toml"
        if not path.is_file():
            raise AwdlstmError(f"unknown pixels preset {preset!r}; valid: {', '.join(preset_names())}")
        with open(path, "rb") as f:
            values = tomllib.load(f).get("pixels", {})
    return PixelConfig(**{**values, **apply_overrides_to(PixelConfig, list(sets))})


def overridden(cfg: PixelConfig, sets: list[str]) -> PixelConfig:
    """``cfg`` with ``key=value`` overrides, validated anew."""
    return PixelConfig(**{**dataclasses.asdict(cfg), **apply_overrides_to(PixelConfig, list(sets))})
