"""Every preset file is a valid config; the CPU-sized recipes plan over their 20 minutes."""

import pytest

from awdlstm.config import build_config, preset_names


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_builds(name):
    build_config(name)


@pytest.mark.parametrize("name", ["cpu-ptb", "cpu-ptb-char"])
def test_cpu_presets_use_the_budget_schedule(name):
    cfg = build_config(name)
    assert cfg.train.schedule == "budget" and cfg.train.max_minutes == 20.0
    assert build_config(name, ["train.max_minutes=7"]).train.max_minutes == 7.0
