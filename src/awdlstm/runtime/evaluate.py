"""Reading a split with the hidden state carried from window to window (every pass over a
split uses ``read_carried``), full-split evaluation, and the batch-1 kernel switch."""

from __future__ import annotations

import contextlib

import torch

from ..data.batching import BPTTIterator, Columns, batchify
from ..model import detach_hidden
from ..progress import progress_bar


@contextlib.contextmanager
def lstm_kernel(batch_size: int):
    """At batch 1 PyTorch's native LSTM kernel is about 3x faster on CPU than oneDNN
    (9.4 vs 31 ms per token at the AWD shape, measured); at larger batches oneDNN wins. Set the switch directly:
    ``mkldnn.flags()`` also touches the TF32 setting and warns on CPU-only builds."""
    if batch_size != 1 or not torch.backends.mkldnn.is_available():
        yield
        return
    previous = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = previous


def model_device(model) -> torch.device:
    return next(model.parameters()).device


def read_carried(model, source: Columns, bptt: int, *, detach: bool = False, progress: bool = False,
                 desc: str = "eval", unit: str = "batch"):
    """Read ``source`` (rows, B) in BPTT windows of ``bptt`` with the hidden state carried
    from each window to the next: yields (x, y, out) on the model's device, ``out`` given
    the targets (log p(target) fp32). ``detach`` cuts the graph between windows, for a caller
    that backpropagates through each one. At B = 1 the native LSTM kernel is switched on."""
    device = model_device(model)
    hidden = model.init_hidden(source.size(1))
    it = BPTTIterator(source, bptt)
    with lstm_kernel(source.size(1)), progress_bar(total=len(it), desc=desc, unit=unit, enabled=progress) as bar:
        for batch in it:
            if detach:
                hidden = detach_hidden(hidden)
            x, y = batch.x.to(device), batch.y.to(device)
            out = model(x, hidden, targets=y)
            yield x, y, out
            hidden = out.hidden
            bar.update()


@torch.no_grad()
def evaluate_sums(model, ids, batch_size: int, bptt: int = 70, progress: bool = False, desc: str = "eval",
                  block: tuple[int, int] | None = None) -> tuple[float, int]:
    """(summed negative log-likelihood in nats, token count) of ``ids`` read as
    ``batch_size`` columns with the hidden state carried through; with ``block`` = (start,
    end) only those columns (columns are independent, so blocks add up to the whole).
    The loss is computed in fp32 on the model's device."""
    source = batchify(ids, batch_size)
    if block is not None:
        source = source.columns(*block)
    if source.size(1) == 0:
        return 0.0, 0
    was_training = model.training
    model.eval()
    total, count = torch.zeros((), dtype=torch.float64, device=model_device(model)), 0
    for _, y, out in read_carried(model, source, bptt, progress=progress, desc=desc):
        total -= out.target_logp.double().sum()
        count += y.numel()
    model.train(was_training)
    return total.item(), count


def evaluate(model, ids, batch_size: int, bptt: int = 70, progress: bool = False, desc: str = "eval") -> float:
    """Mean negative log-likelihood (nats per token) of ``ids`` over the whole split."""
    total, count = evaluate_sums(model, ids, batch_size, bptt, progress, desc)
    return total / count
