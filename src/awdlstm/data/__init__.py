"""Corpora, vocabulary, synthetic data and BPTT batching."""

from .batching import Batch, BPTTIterator, batchify, sample_seq_len
from .corpus import Corpus, SplitStats, load_corpus
from .sources import KNOWN
from .synthetic import SyntheticSpec, write_synthetic
from .vocab import EOS, UNK, Vocabulary

__all__ = ["Batch", "BPTTIterator", "batchify", "sample_seq_len", "Corpus", "SplitStats",
           "load_corpus", "KNOWN", "SyntheticSpec", "write_synthetic", "EOS", "UNK", "Vocabulary"]
