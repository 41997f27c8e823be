"""Model folders: export -> load gives identical log-probabilities; the files are what they say."""

import json

import pytest
import torch
from safetensors.torch import load_file

from awdlstm.checkpoints.model_folder import read_model_folder
from awdlstm.checkpoints.run_folder import model_from_checkpoint
from awdlstm.cli import main
from awdlstm.errors import AwdlstmError
from tests.conftest import make_model_folder
from tests.test_cli_data import assert_one_line_error


def log_probs(model, tokens):
    with torch.no_grad():
        out = model(tokens, model.init_hidden(tokens.size(1)))
    return torch.log_softmax(out.logits.float(), -1)


def test_round_trip_gives_identical_log_probabilities(tiny_run, tmp_path, capsys):
    run_dir, results = tiny_run
    folder = tmp_path / "model"
    assert main(["export", str(run_dir), "--format", "folder", "--out", str(folder)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors", "vocab.json"]
    original, vocab, cfg, _ = model_from_checkpoint(run_dir)
    loaded, vocab2, cfg2, ckpt = model_from_checkpoint(folder)
    assert vocab2.itos == vocab.itos and cfg2 == cfg and ckpt.meta["kind"] == "exported"
    tokens = torch.randint(0, len(vocab), (17, 3))
    assert torch.equal(log_probs(original, tokens), log_probs(loaded, tokens))
    # The tied output matrix is stored once and shared again on load.
    stored = load_file(str(folder / "model.safetensors"))
    assert "decoder.weight" not in stored and "embedding.weight" in stored
    assert loaded.decoder.weight.data_ptr() == loaded.embedding.weight.data_ptr()
    config = json.loads((folder / "config.json").read_text())
    assert config["tied"] == {"decoder.weight": "embedding.weight"} and config["vocab_size"] == len(vocab)
    assert json.loads((folder / "vocab.json").read_text()) == vocab.itos
    card = (folder / "README.md").read_text()
    assert "synthetic" in card and f"{results['valid_ppl']:.3f}" in card and f"{loaded.num_parameters():,}" in card


def test_every_command_takes_a_folder(tiny_run, tmp_path, capsys):
    run_dir, _ = tiny_run
    folder = tmp_path / "model"
    assert main(["export", str(run_dir), "--out", str(folder)]) == 0
    capsys.readouterr()
    assert main(["eval", str(run_dir), "--split", "valid"]) == 0
    from_run = capsys.readouterr().out
    assert main(["eval", str(folder), "--split", "valid"]) == 0
    assert capsys.readouterr().out == from_run
    assert main(["generate", str(folder), "--tokens", "5", "--seed", "1"]) == 0
    assert main(["export", str(folder), "--out", str(tmp_path / "again")]) == 0  # a folder exports too


def test_the_card_quotes_the_training_command(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", "--preset", "tiny", "--out", str(run_dir), "--set", "train.epochs=1"]) == 0
    assert main(["export", str(run_dir), "--out", str(tmp_path / "m")]) == 0
    card = (tmp_path / "m" / "README.md").read_text()
    assert f"awdlstm train --preset tiny --out {run_dir} --set train.epochs=1" in card


def test_bad_folders_are_one_line_errors(tmp_path, capsys):
    folder = make_model_folder(tmp_path / "m")
    (folder / "vocab.json").write_text("[1, 2")
    with pytest.raises(AwdlstmError, match="vocab.json: not valid JSON"):
        read_model_folder(folder)
    (folder / "vocab.json").write_text('["a"]')
    with pytest.raises(AwdlstmError, match="vocab_size"):
        read_model_folder(folder)
    (folder / "vocab.json").unlink()
    code, _, err = main(["eval", str(folder)]), *capsys.readouterr()
    assert_one_line_error(code, err, "vocab.json: missing")
    (folder / "config.json").write_text('{"format": "other"}')
    with pytest.raises(AwdlstmError, match="not an awdlstm model folder"):
        read_model_folder(folder)


def test_export_refuses_a_folder_that_is_not_empty(tiny_run, tmp_path, capsys):
    run_dir, _ = tiny_run
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("keep me")
    code = main(["export", str(run_dir), "--out", str(tmp_path / "busy")])
    assert_one_line_error(code, capsys.readouterr().err, "not empty")
    assert (tmp_path / "busy" / "notes.txt").read_text() == "keep me"
