"""The [data] section: which corpus to train on and how to read it."""

from __future__ import annotations

from dataclasses import dataclass

from ..settings import Validated, param


@dataclass
class DataConfig(Validated):
    """Which corpus to train on and how to read it."""

    SECTION = "data"
    corpus: str = param("ptb", "known corpus name, 'synthetic', or a folder with train/valid/test files")
    data_dir: str = param("", "folder holding corpora by name (empty: $AWDLSTM_DATA, then the cache)")
    level: str = param("", "'word' (perplexity) or 'char' (bits per character); empty: from the corpus",
                       ("", "word", "char"))
    tokenizer: str = param("", "'split' (whitespace) or 'chars'; empty: from the corpus and level",
                           ("", "split", "chars"))
    max_vocab: int = param(0, "keep at most this many vocabulary entries, <eos> and <unk> included, the most "
                           "frequent training tokens; the others read as <unk> (0: every training token)", "nonneg")
    min_freq: int = param(1, "keep training tokens seen at least this often; rarer ones read as <unk>", "positive")
