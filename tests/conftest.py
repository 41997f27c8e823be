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
