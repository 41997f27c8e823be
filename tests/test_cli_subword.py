"""From a file of raw text to a subword model, its per-word perplexity, scores, generated
text, a model folder and an ONNX file, with neither the text nor the token cache left: the
tokenizer travels inside the checkpoint and the folder."""

import json
import math
import shutil

import numpy as np
import pytest

from awdlstm import load
from awdlstm.cli import main
from awdlstm.data.paths import cache_root

WORDS = ["the", "company", "said", "shares", "bank", "banking", "bankers", "companies", "sold", "buy"]


@pytest.fixture(scope="module")
def subword_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("subword")
    rng = np.random.default_rng(0)
    raw = root / "notes.txt"
    raw.write_text("".join(" ".join(rng.choice(WORDS, 8)) + "\n" for _ in range(600)))
    run = root / "run"
    code = main(["train", "--preset", "tiny", "--corpus", str(raw), "--out", str(run), "--set", "data.tokenizer=bpe",
                 "--set", "data.vocab_size=40", "--set", "train.epochs=1", "--set", "train.batch_size=8"])
    assert code == 0
    results = json.loads((run / "results.json").read_text())
    raw.unlink()  # nothing but the run folder is left
    shutil.rmtree(cache_root() / "tokens")
    return run, results, root


def test_training_reports_perplexity_per_token_and_per_word(subword_run):
    _, results, _ = subword_run
    assert {"valid_ppl", "valid_word_ppl", "valid_bpc", "test_word_ppl"} <= set(results)
    assert results["valid_word_ppl"] > results["valid_ppl"]  # more tokens than words: the same total over fewer units


def test_score_per_word_perplexity_is_the_total_over_the_words(subword_run, tmp_path, capsys):
    run, _, _ = subword_run
    lines = ["the company said", "bankers sold shares of the bank"]
    f = tmp_path / "s.txt"
    f.write_text("\n".join(lines) + "\n")
    assert main(["score", str(run), str(f), "--json"]) == 0
    total = json.loads(capsys.readouterr().out)["total"]
    lm = load(run)
    scored = lm.score(lines)
    logprob = sum(s.total for s in scored)
    words = sum(len(line.split()) + 1 for line in lines)  # each line's words and its end
    chars = sum(len(line) + 1 for line in lines)
    assert total["tokens"] == sum(len(s.logp) for s in scored) > words
    assert total["word_ppl"] == pytest.approx(math.exp(-logprob / words), rel=1e-9)
    assert total["bpc"] == pytest.approx(-logprob / math.log(2) / chars, rel=1e-9)
    assert lm.tokenizer.kind == "bpe" and scored[0].tokens[0].startswith("\u2581")


def test_a_model_folder_and_an_onnx_file_carry_the_tokenizer(subword_run, tmp_path, capsys):
    run, _, _ = subword_run
    folder = tmp_path / "model"
    assert main(["export", str(run), "--out", str(folder)]) == 0
    capsys.readouterr()
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors", "vocab.json"]
    from_folder, from_run = load(folder), load(run)
    assert from_folder.tokenizer == from_run.tokenizer
    text = "the bankers said"
    assert from_folder.ids(text) == from_run.ids(text)
    assert main(["generate", str(folder), "--tokens", "12", "--seed", "1", "--prompt", "the bank"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("the bank") and "\u2581" not in out
    onnx = pytest.importorskip("onnx")
    assert main(["export", str(run), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 0
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert meta["tokenizer"] == "bpe" and json.loads(meta["tokenizer_model"])["library"] == "sentencepiece"


def test_eval_reports_per_word_perplexity_when_the_corpus_is_there(subword_run, capsys):
    run, results, root = subword_run
    rng = np.random.default_rng(0)  # the same text again: the run's corpus
    (root / "notes.txt").write_text("".join(" ".join(rng.choice(WORDS, 8)) + "\n" for _ in range(600)))
    try:
        assert main(["eval", str(run), "--split", "valid"]) == 0
    finally:
        (root / "notes.txt").unlink()
    out = capsys.readouterr().out
    assert "per word ppl" in out and "bpc" in out
