"""awdlstm: regularized recurrent language models (AWD-LSTM and family) in PyTorch.

    model = awdlstm.build_model(awdlstm.ModelConfig(), vocab_size=10_000)
    hidden = model.init_hidden(batch_size)
    out = model(tokens, hidden)  # tokens (T, B) -> out.logits (T, B, V), out.hidden, ...

    lm = awdlstm.load("runs/cpu-ptb-…")  # a trained model: step, top_k, score (inference/predictor.py)
"""

from .config import ModelConfig
from .data import BPTTIterator, SyntheticSpec, Vocabulary, batchify, load_corpus
from .errors import AwdlstmError
from .inference.predictor import Predictor, load
from .model import LanguageModel, LMOutput, build_model, detach_hidden

__version__ = "0.1.0"
__all__ = ["AwdlstmError", "BPTTIterator", "SyntheticSpec", "Vocabulary", "batchify", "load_corpus",
           "ModelConfig", "LanguageModel", "LMOutput", "Predictor", "build_model", "detach_hidden", "load"]
