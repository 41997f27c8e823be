"""Registry of output heads, selectable by ``model.head``. A new head is one file with a
class following head.py's protocol, plus its line here."""

from .adaptive_softmax import AdaptiveSoftmax
from .head import Head
from .mos import MixtureOfSoftmaxes
from .softmax import SoftmaxHead

HEADS: dict[str, type[Head]] = {
    "softmax": SoftmaxHead,
    "adaptive": AdaptiveSoftmax,
    "mos": MixtureOfSoftmaxes,
}
