"""The [data] section: which corpus to train on and how to read it."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import AwdlstmError
from ..settings import Validated, param


@dataclass
class DataConfig(Validated):
    """Which corpus to train on and how to read it."""

    SECTION = "data"
    corpus: str = param("ptb", "known corpus name, 'synthetic', a folder with train/valid/test files, or "
                        "raw text: a .txt or .jsonl file, or a folder of them (split by the fractions below)")
    data_dir: str = param("", "folder holding corpora by name (empty: $AWDLSTM_DATA, then the cache)")
    level: str = param("", "'word' (perplexity) or 'char' (bits per character); empty: from the corpus",
                       ("", "word", "char"))
    tokenizer: str = param("", "'split' (whitespace), 'chars', or subword units trained on the training split "
                           "by SentencePiece: 'bpe' or 'unigram' (with data.vocab_size); empty: from the corpus and "
                           "level", ("", "split", "chars", "bpe", "unigram"))
    vocab_size: int = param(0, "bpe / unigram: the number of subword pieces, <eos> and <unk> included", "nonneg")
    tokenizer_model: str = param("", "an existing SentencePiece .model or Hugging Face tokenizer.json to read the "
                                 "text with, as it is (e.g. an ASR system's units); it travels in the checkpoint")
    max_vocab: int = param(0, "keep at most this many vocabulary entries, <eos> and <unk> included, the most "
                           "frequent training tokens; the others read as <unk> (0: every training token)", "nonneg")
    min_freq: int = param(1, "keep training tokens seen at least this often; rarer ones read as <unk>", "positive")
    valid_fraction: float = param(0.05, "a single file or a folder without split files: the share of its lines, "
                                  "just before the test lines, that is the validation split", "prob")
    test_fraction: float = param(0.05, "the same: the share of its last lines that is the test split", "prob")
    text_field: str = param("text", "JSON lines: the field of each object that holds its text")

    def validate(self) -> None:
        from .corpus import choose_tokenizer
        _, kind = choose_tokenizer(self.level or None, self.tokenizer or None, self.vocab_size, self.tokenizer_model)
        if kind not in ("split", "chars") and (self.max_vocab or self.min_freq != 1):
            raise AwdlstmError(f"data.max_vocab / data.min_freq cut a vocabulary built from the corpus; the {kind} "
                               f"tokenizer has its own (data.vocab_size sets a trained one's size)")
        if self.valid_fraction + self.test_fraction >= 1:
            raise AwdlstmError(f"data.valid_fraction={self.valid_fraction} and data.test_fraction="
                               f"{self.test_fraction} leave no training lines; their sum must be below 1")
