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


def test_the_text8_recipe_reads_the_standard_split_through_the_loader(tmp_path):
    """zoneout-text8: the paper's z_c = z_h = 0.2 on 90M / 5M / 5M characters of text8; a
    folder named text8 (here 1,000 bytes cut the same way) loads at character level."""
    from awdlstm.data import KNOWN, load_corpus
    from awdlstm.data.download import _cut_char_splits

    cfg = build_config("zoneout-text8")
    assert cfg.data.corpus == "text8" and (cfg.model.zoneout_c, cfg.model.zoneout_h) == (0.2, 0.2)
    assert KNOWN["text8"].char_splits == (90_000_000, 5_000_000, 5_000_000)
    folder = tmp_path / "text8"
    folder.mkdir()
    words = " anarchism originated as a term of abuse first used against early working class radicals"
    (folder / "text8").write_bytes((words * 20).encode()[:1000])
    _cut_char_splits(folder, "text8", (900, 50, 50))
    c = load_corpus(str(folder), progress=False)
    assert c.level == "char" and c.tokenizer.kind == "chars"
    assert [c.stats[s].tokens for s in ("train", "valid", "test")] == [901, 51, 51]  # each split one line + <eos>


def test_the_mogrifier_recipe_is_the_papers_24m_model():
    """mogrifier-ptb: 2 layers of 5-round Mogrifier cells with Q and R at rank 84, tied, the
    width the largest whose model stays within the paper's 24M parameters on PTB's 10,000
    words, and Adam with beta1 = 0 (the authors' "rmsprop")."""
    from awdlstm.model.lm import build_model

    def parameters(cfg):
        return sum(p.numel() for p in build_model(cfg.model, 10_000).parameters())

    cfg = build_config("mogrifier-ptb")
    m, t = cfg.model, cfg.train
    assert (m.cell, m.num_layers, m.mogrifier_rounds, m.mogrifier_rank, m.tie_weights) == ("mogrifier", 2, 5, 84, True)
    assert m.emb_size == m.hidden_size
    assert parameters(cfg) <= 24_000_000
    wider = m.hidden_size + 1
    assert parameters(build_config("mogrifier-ptb", [f"model.emb_size={wider}", f"model.hidden_size={wider}"])) \
        > 24_000_000
    assert (t.optimizer, t.adam_beta1, t.batch_size, t.bptt) == ("adam", 0.0, 64, 70)
