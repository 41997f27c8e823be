"""awdlstm: regularized recurrent language models (AWD-LSTM and family) in PyTorch."""

from .data import BPTTIterator, SyntheticSpec, Vocabulary, batchify, load_corpus
from .errors import AwdlstmError

__version__ = "0.1.0"
__all__ = ["AwdlstmError", "BPTTIterator", "SyntheticSpec", "Vocabulary", "batchify", "load_corpus"]
