"""A cell knob that cannot act under the chosen cells is a config error naming the key."""

import pytest

from awdlstm import ModelConfig
from awdlstm.config import build_config
from awdlstm.errors import AwdlstmError
from awdlstm.model.layers import KNOBS, LAYERS


@pytest.mark.parametrize("kind, knob", [(k, n) for k, knobs in KNOBS.items() for n in knobs])
def test_a_knob_needs_its_cell(kind, knob):
    value = 2 if knob.startswith(("mogrifier", "batchnorm")) else 0.2
    with pytest.raises(AwdlstmError, match=f"model.{knob}={value} only acts with model.cell=.*'{kind}'.*now model.cell='lstm'"):
        ModelConfig(**{knob: value})
    ModelConfig(cell=kind, **{knob: value})  # with its cell it is fine
    ModelConfig(num_layers=2, layer_cells=["lstm", kind], **{knob: value})  # so is one layer of that kind
    with pytest.raises(AwdlstmError, match=f"model.{knob}"):
        ModelConfig(num_layers=2, layer_cells=["lstm", "lstm"], cell=kind, **{knob: value})  # layer_cells overrides


def test_every_kind_is_registered():
    assert set(KNOBS) <= set(LAYERS)


def test_the_error_reaches_the_cli_config():
    with pytest.raises(AwdlstmError, match="zoneout_c"):
        build_config("tiny", ["model.zoneout_c=0.5"])
