"""Gradient flow through time: ||dL/dh_t|| for every t of a window.

The loss is taken at the last step only, so ||dL/dh_t|| shows how much of it reaches
step t: it shrinks (vanishing) or grows (exploding) as it travels back. "Clipped" rescales
the gradient arriving at each h_t to a norm of at most ``clip`` (what clipping does to a
gradient that explodes). The textbook demonstration multiplies a gradient by W_h^T again
and again, with W_h scaled so that its largest singular value is above or below 1.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import AwdlstmError


def _clip_hook(clip: float):
    def hook(grad):
        norm = grad.norm()
        return grad * (clip / norm) if norm > clip else grad
    return hook


def hidden_grad_norms(cell: nn.Module, x: torch.Tensor, clip: float | None = None) -> list[float]:
    """Run ``cell`` (RNNCell or LSTMCell) over x (T, B, In); loss = sum of h_T; return
    ||dL/dh_t|| for t = 1..T."""
    T, B, _ = x.shape
    H = cell.hidden_size
    h = x.new_zeros(B, H)
    c = x.new_zeros(B, H)
    hs = []
    for t in range(T):
        if isinstance(cell, nn.LSTMCell):
            h, c = cell(x[t], (h, c))
        else:
            h = cell(x[t], h)
        h.retain_grad()
        if clip is not None:
            h.register_hook(_clip_hook(clip))
        hs.append(h)
    hs[-1].sum().backward()
    return [h.grad.norm().item() for h in hs]


def repeated_products(hidden: int, steps: int, top_singular: float, seed: int = 0) -> list[float]:
    """||(W_h^T)^k g|| for k = 0..steps-1. W_h is a random orthogonal matrix times
    ``top_singular``, so every singular value equals it and the norm goes exactly as s^k.
    (A Gaussian W_h scaled to a largest singular value s grows only like its spectral
    radius, about s / 2: a singular value above 1 is needed to explode, not enough.)"""
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(hidden, hidden, generator=gen))
    w = q * top_singular
    g = torch.randn(hidden, generator=gen)
    norms = []
    for _ in range(steps):
        norms.append(g.norm().item())
        g = w.t() @ g
    return norms


def gradflow(steps: int = 50, hidden: int = 100, batch: int = 4, clip: float = 1.0, seed: int = 0,
             lstm: nn.LSTMCell | None = None, inputs: torch.Tensor | None = None,
             device: torch.device | str = "cpu") -> dict[str, list[float]]:
    """Every curve of the demonstration, as lists indexed by step (earliest first). The
    weights and inputs are drawn on the CPU, so every device shows the same curves."""
    torch.manual_seed(seed)
    if lstm is None:
        lstm = nn.LSTMCell(hidden, hidden)
    rnn = nn.RNNCell(lstm.input_size, lstm.hidden_size, nonlinearity="tanh")
    x = inputs if inputs is not None else torch.randn(steps, batch, lstm.input_size)
    lstm, rnn, x = lstm.to(device), rnn.to(device), x.to(device)
    curves = {
        "tanh RNN": hidden_grad_norms(rnn, x),
        "LSTM": hidden_grad_norms(lstm, x),
    }
    with torch.no_grad():  # large recurrent weights make the tanh RNN explode rather than only vanish
        rnn.weight_hh.mul_(4.0)
    curves["tanh RNN, W_h x4"] = hidden_grad_norms(rnn, x)
    curves[f"tanh RNN, W_h x4, clipped at {clip:g}"] = hidden_grad_norms(rnn, x, clip)
    curves["product, top singular value 1.1"] = repeated_products(lstm.hidden_size, x.size(0), 1.1, seed)[::-1]
    curves["product, top singular value 0.9"] = repeated_products(lstm.hidden_size, x.size(0), 0.9, seed)[::-1]
    return curves


def lstm_cell_from_model(model) -> nn.LSTMCell:
    """The first recurrent layer of a trained model, as an LSTMCell with the same weights."""
    lstm = model.layers[0].as_lstm()
    if lstm is None:
        raise AwdlstmError(f"--run: the first layer ({type(model.layers[0]).__name__}) is not an LSTM")
    cell = nn.LSTMCell(lstm.input_size, lstm.hidden_size)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).copy_(getattr(lstm, f"{name}_l0"))
    return cell


def plot_gradflow(curves: dict[str, list[float]], path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for name, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, label=name, ls="--" if name.startswith("product") else "-")
    ax.set_yscale("log")
    ax.set_xlabel("time step t (the loss is at the last step)")
    ax.set_ylabel("||dL/dh_t||")
    ax.set_title("Gradient flow through time")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def format_table(curves: dict[str, list[float]], every: int = 5) -> str:
    names = list(curves)
    T = len(next(iter(curves.values())))
    head = "t      " + " ".join(f"{n[:22]:>23s}" for n in names)
    rows = [head]
    for t in list(range(0, T, every)) + ([T - 1] if (T - 1) % every else []):
        rows.append(f"{t + 1:<6d} " + " ".join(f"{curves[n][t]:23.3e}" for n in names))
    return "\n".join(rows)
