"""Fine-tuning on a new corpus: the vocabulary transfer (shared rows copied exactly, new
rows the mean), discriminative learning rates, the slanted triangular schedule, and the
CLI from one corpus to another."""

import json

import pytest
import torch

from awdlstm import commands
from awdlstm.checkpoints.run_folder import model_from_checkpoint
from awdlstm.cli import main
from awdlstm.config import build_config
from awdlstm.errors import AwdlstmError
from awdlstm.model import build_model
from awdlstm.train.param_groups import layer_groups, lm_layers
from awdlstm.train.schedules.stlr import stlr
from awdlstm.train.transfer import transfer_rows, word_rows

OLD = ["<eos>", "a", "b", "c", "d"]
NEW = ["<eos>", "c", "x", "a", "y", "z"]


@pytest.mark.parametrize("sets", [[], ["model.tie_weights=false"], ["model.head=adaptive", "model.adaptive_cutoffs=[3]"]])
def test_shared_rows_are_copied_and_new_rows_are_the_mean(sets):
    torch.manual_seed(0)
    cfg = build_config("tiny", sets)
    old = build_model(cfg.model, len(OLD))
    with torch.no_grad():
        old.decoder.bias.uniform_(-1, 1)
    state = transfer_rows(old.state_dict(), OLD, NEW, word_rows(old))
    new = build_model(cfg.model, len(NEW))
    new.load_state_dict(state)
    for module, name in ((old.embedding, "weight"), (old.decoder, "weight"), (old.decoder, "bias")):
        before = getattr(module, name).detach()
        after = getattr(new.embedding if module is old.embedding else new.decoder, name).detach()
        for w in NEW:
            if w in OLD:
                assert torch.equal(after[NEW.index(w)], before[OLD.index(w)])
            else:
                torch.testing.assert_close(after[NEW.index(w)], before.mean(0))
    if cfg.model.tie_weights:  # the tied decoder is the embedding
        assert new.decoder.weight is new.embedding.weight
    old_rest = {k: v for k, v in old.state_dict().items() if not k.startswith(("embedding.", "decoder.weight",
                                                                               "decoder.bias"))}
    for k, v in old_rest.items():  # every other weight as it was
        assert torch.equal(new.state_dict()[k], v)


def test_discriminative_groups_divide_the_rate_layer_by_layer():
    model = build_model(build_config("tiny").model, 20)
    groups = layer_groups(lm_layers(model), 2.6)
    assert [g["lr_scale"] for g in groups] == pytest.approx([2.6 ** -2, 2.6 ** -1, 1.0])
    # fastai's split: each layer alone, then the embedding and the (tied) decoder at the full rate.
    assert groups[0]["params"] == list(model.layers[0].parameters())
    assert groups[-1]["params"][0] is model.embedding.weight and model.decoder.weight is model.embedding.weight
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))


def test_slanted_triangular_schedule():
    assert stlr(1.0, 0.0, 0.1, 32) == pytest.approx(1 / 32)
    assert stlr(1.0, 0.1, 0.1, 32) == pytest.approx(1.0)
    assert stlr(1.0, 1.0, 0.1, 32) == pytest.approx(1 / 32)
    assert stlr(1.0, 0.05, 0.1, 32) == pytest.approx((1 + 0.5 * 31) / 32)
    assert stlr(1.0, 0.55, 0.1, 32) == pytest.approx((1 + 0.5 * 31) / 32)
    with pytest.raises(AwdlstmError, match="stlr"):
        build_config("tiny", ["train.stlr_cut=0.2"])


def write_new_corpus(folder):
    """A corpus sharing some words with the synthetic one (a*, w*, z*) and adding others."""
    folder.mkdir()
    lines = ["a1 w3 w4 new1 z1", "a2 new2 w5 z2", "a1 w0 new3 new1 z1", "a3 w7 w7 new2 z3"]
    for split, n in (("train", 60), ("valid", 8), ("test", 8)):
        (folder / f"{split}.txt").write_text("\n".join(lines * (n // 4)) + "\n")
    return folder


def test_finetune_on_a_new_corpus_from_the_cli(tiny_run, tmp_path, capsys):
    source, _ = tiny_run
    corpus = write_new_corpus(tmp_path / "new")
    out = tmp_path / "ft"
    code = main(["finetune", str(source), "--corpus", str(corpus), "--out", str(out), "--set", "train.epochs=2",
                 "--set", "train.schedule=stlr", "--set", "train.lr_layer_decay=2.6"])
    assert code == 0, capsys.readouterr().err
    info = json.loads((out / "transfer.json").read_text())
    assert info["new_words"] == 3 and info["shared_words"] >= 10
    model, vocab, cfg, _ = model_from_checkpoint(out)
    assert "new1" in vocab.stoi and cfg.data.corpus == str(corpus)
    results = json.loads((out / "results.json").read_text())
    assert results["valid_loss"] < info["valid_loss_before"]  # it learned the new corpus
    capsys.readouterr()
    assert main(["eval", str(out), "--split", "valid"]) == 0  # evaluation reads the new vocabulary
    assert "valid: loss" in capsys.readouterr().out


def test_finetune_errors(tiny_run, tmp_path, capsys):
    source, _ = tiny_run
    assert main(["finetune", str(source), "--out", str(tmp_path / "x")]) == 2
    assert "--corpus" in capsys.readouterr().err
    empty = tmp_path / "disjoint"
    empty.mkdir()
    for split in ("train", "valid", "test"):
        (empty / f"{split}.txt").write_text("q r s\n")
    with pytest.raises(AwdlstmError, match="shares no word"):
        commands.finetune(str(source), corpus=str(empty), out=str(tmp_path / "y"), log=lambda *a: None)
