"""TorchScript for the recurrences that ONNX export must keep as loops.

PyTorch's TorchScript-based ONNX exporter turns a scripted ``for t in range(T)`` into an
ONNX Loop over a dynamic T; tracing (and the dynamo exporter, as of PyTorch 2.13) unrolls
it to the example's length. ``torch.jit.script`` is deprecated in favour of torch.compile
and torch.export, neither of which exports such a loop yet, so its warning is silenced here.
"""

import warnings

import torch


def script(fn):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.script.*deprecated", category=DeprecationWarning)
        return torch.jit.script(fn)


def interpreted():
    """Run scripted functions without the graph executor's optimizations: it differentiates
    a function's first call by autograd and later calls by its own derivative formulas, so
    results change after the first call (a resumed run would not reproduce an uninterrupted
    one); without them every call is the first, and on CPU measured no slower (GRU 70 x 20 x
    256: 70 vs 78 ms per forward and backward)."""
    return torch.jit.optimized_execution(False)
