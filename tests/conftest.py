"""Shared fixtures. Every test gets its own cache folder, so nothing leaks between tests
or into the user's cache."""

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("AWDLSTM_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def real_data() -> Path:
    """The folder of real corpora named by $AWDLSTM_DATA; skip when it is not set."""
    root = os.environ.get("AWDLSTM_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("AWDLSTM_DATA does not name a folder of real corpora")
    return Path(root)


def write_corpus(folder: Path, train: str, valid: str, test: str, names=("train.txt", "valid.txt", "test.txt")) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in zip(names, (train, valid, test)):
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One run of the tiny preset, shared by the tests that only read it: (run_dir, results)."""
    from awdlstm import commands

    cache = tmp_path_factory.mktemp("session-cache")
    old = os.environ.get("AWDLSTM_CACHE")
    os.environ["AWDLSTM_CACHE"] = str(cache)
    try:
        run_dir = tmp_path_factory.mktemp("runs") / "tiny"
        results = commands.train("tiny", None, [], str(run_dir), None, log=lambda *a: None)
    finally:
        if old is None:
            os.environ.pop("AWDLSTM_CACHE", None)
        else:
            os.environ["AWDLSTM_CACHE"] = old
    return run_dir, results


WORDS = ["<eos>", "<unk>", "the", "company", "said", "it", "would", "buy", "shares", "of", "a", "bank"]


def make_model_folder(folder: Path, sets: list[str] = (), vocab: list[str] = WORDS, seed: int = 0,
                      tokenizer=None) -> Path:
    """A model folder holding a freshly initialized model of the tiny preset (with ``sets``)
    over ``vocab`` (a subword ``tokenizer``'s own, when given): no training, for tests of
    what reads a model."""
    import torch

    from awdlstm.checkpoints.checkpoint import Checkpoint
    from awdlstm.checkpoints.model_folder import write_model_folder
    from awdlstm.config import build_config
    from awdlstm.model import build_model

    if tokenizer is not None:
        vocab = tokenizer.vocabulary()
    cfg = build_config("tiny", list(sets))
    torch.manual_seed(seed)
    model = build_model(cfg.model, len(vocab))
    with torch.no_grad():  # biases away from zero, so that every parameter matters
        for name, p in model.named_parameters():
            if "bias" in name:
                p.uniform_(-0.5, 0.5)
    meta = {"config": cfg.to_dict(), "vocab": list(vocab), "level": "word", "tokenizer": "split"}
    if tokenizer is not None:
        meta.update(tokenizer.meta())
    write_model_folder(Checkpoint(folder, {"model.": model.state_dict()}, meta), folder, "# test model\n")
    return folder
