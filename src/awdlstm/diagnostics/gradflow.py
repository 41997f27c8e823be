"""Gradient flow through time: ||dL/dh_t|| (and ||dL/dc_t||) for every t of a window.

The loss is taken at the last step only, so ||dL/dh_t|| shows how much of it reaches
step t: it shrinks (vanishing) or grows (exploding) as it travels back. "Clipped" rescales
the gradient arriving at each h_t to a norm of at most ``clip`` (what clipping does to a
gradient that explodes). The textbook demonstration multiplies a gradient by W_h^T again
and again, with W_h scaled so that its largest singular value is above or below 1.

The zoneout paper's argument (Krueger et al. 2016, its gradient-flow figure) is the second
demonstration, ``compare_regularizers``: one layer of a cell kind with each regularizer
(none, zoneout, recurrent dropout, Gal's variational dropout, batch normalization), the same
weights and the same long input, in training mode; a zoned-out unit copies its gradient to
the previous step unchanged, so zoneout's curves fall more slowly. Any layer kind of the
registry runs here as it is, a trained run's too (``layer_state_norms``): the layer is
stepped one time step per call, carrying its state, and the state tensors it returns are
the h_t and c_t whose gradients are read.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import AwdlstmError
from ..model.config import ModelConfig
from ..model.layers import LAYERS

# A regularizer of the comparison: for each cell family, the layer kind and its knobs. The
# probabilities: zoneout as the paper's PTB runs (z_c 0.5, z_h 0.05; h-only cells z_h 0.5),
# recurrent dropout and Gal's dropout 0.25.
REGULARIZED = {
    "lstm": {"none": ("lstm", {}), "zoneout": ("zoneout", {"zoneout_c": 0.5, "zoneout_h": 0.05}),
             "recurrent-dropout": ("recurrent-dropout", {"recurrent_dropout": 0.25}),
             "variational": ("variational", {"variational_h": 0.25}), "batchnorm": ("batchnorm-lstm", {}),
             "batchnorm+zoneout": ("batchnorm-lstm", {"zoneout_c": 0.5, "zoneout_h": 0.05})},
    "gru": {"none": ("gru", {}), "zoneout": ("gru", {"zoneout_h": 0.5}),
            "recurrent-dropout": ("gru", {"recurrent_dropout": 0.25})},
    "rnn": {"none": ("rnn", {}), "zoneout": ("rnn", {"zoneout_h": 0.5})},
    "layernorm-lstm": {"none": ("layernorm-lstm", {}),
                       "zoneout": ("layernorm-lstm", {"zoneout_c": 0.5, "zoneout_h": 0.05})},
}
SHARED_MASKS = ("variational",)  # one mask per sequence: the same draw at every step


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


def regularized_layer(family: str, regularizer: str, size: int):
    """A fresh layer of ``family`` with ``regularizer`` (REGULARIZED), ``size`` in and out."""
    if family not in REGULARIZED:
        raise AwdlstmError(f"--cell {family}: valid cells for the comparison are {', '.join(REGULARIZED)}")
    if regularizer not in REGULARIZED[family]:
        raise AwdlstmError(f"--compare {regularizer}: the {family} cell takes {', '.join(REGULARIZED[family])}")
    kind, knobs = REGULARIZED[family][regularizer]
    return LAYERS[kind](size, size, ModelConfig(cell=kind, weight_drop=0.0, **knobs))


def layer_state_norms(layer, x: torch.Tensor, shared_masks: bool = False, seed: int = 0) -> dict[str, list[float]]:
    """Step ``layer`` over x (T, B, In) one step per call in training mode; loss = sum of
    h_T; return {"h": ||dL/dh_t||, "c": ||dL/dc_t|| (cells with a cell state)} for t = 1..T.
    ``shared_masks``: every step draws the same masks (Gal's one mask per sequence)."""
    was = layer.training
    layer.train()
    state = layer.init_state(x.size(1))
    hs, cs = [], []
    has_c = layer.state_size >= 2 and type(layer).__name__ != "GRULayer"
    for t in range(x.size(0)):
        if shared_masks:
            torch.manual_seed(seed)
        _, state = layer(x[t:t + 1], state)
        state[0].retain_grad()
        hs.append(state[0])
        if has_c:
            state[1].retain_grad()
            cs.append(state[1])
    hs[-1].sum().backward()
    layer.train(was)
    # c_T reaches no loss (h_T is computed beside it, not from the returned tensor): its gradient is 0.
    out = {"h": [_norm(h) for h in hs]}
    if has_c:
        out["c"] = [_norm(c) for c in cs]
    return out


def _norm(t: torch.Tensor) -> float:
    return t.grad.norm().item() if t.grad is not None else 0.0


def compare_regularizers(family: str = "lstm", regularizers=("none", "zoneout"), steps: int = 200,
                         hidden: int = 64, batch: int = 8, seed: int = 0) -> dict[str, dict[str, list[float]]]:
    """``layer_state_norms`` of one layer of ``family`` with each regularizer: the same
    initial weights where the kinds share them, the same inputs, the same mask seed."""
    torch.manual_seed(seed)
    x = torch.randn(steps, batch, hidden)
    out = {}
    for reg in regularizers:
        torch.manual_seed(seed)
        layer = regularized_layer(family, reg, hidden)
        torch.manual_seed(seed + 1)
        out[reg] = layer_state_norms(layer, x, reg in SHARED_MASKS, seed + 1)
    return out


def run_layer_norms(model, steps: int, batch: int = 8, seed: int = 0) -> dict[str, dict[str, list[float]]]:
    """A trained model's first layer, its own cell and regularizer, on its embedding of
    random tokens (a stand-in for text: the gradients' path is the layer's)."""
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(model.embedding.num_embeddings, (steps, batch), generator=gen)
    with torch.no_grad():
        x = model.embedding(tokens)
    layer = model.layers[0]
    name = f"{type(layer).__name__} of the run"
    torch.manual_seed(seed)
    return {name: layer_state_norms(layer, x)}


def plot_state_norms(curves: dict[str, dict[str, list[float]]], path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    kinds = [k for k in ("c", "h") if any(k in v for v in curves.values())]
    fig, axes = plt.subplots(1, len(kinds), figsize=(6.5 * len(kinds), 4.5), squeeze=False)
    for ax, k in zip(axes[0], kinds):
        for name, values in curves.items():
            if k in values:  # a zero (c_T, which no loss reads) has no place on a log scale
                ax.plot(range(1, len(values[k]) + 1), [v if v > 0 else float("nan") for v in values[k]], label=name)
        ax.set_yscale("log")
        ax.set_xlabel("time step t (the loss is at the last step)")
        ax.set_ylabel(f"||dL/d{k}_t||")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def format_state_table(curves: dict[str, dict[str, list[float]]], every: int = 25) -> str:
    columns = [(name, k) for name, v in curves.items() for k in ("c", "h") if k in v]
    T = len(next(iter(next(iter(curves.values())).values())))
    rows = ["t      " + " ".join(f"{(n[:18] + ' ' + k):>21s}" for n, k in columns)]
    for t in list(range(0, T, every)) + ([T - 1] if (T - 1) % every else []):
        rows.append(f"{t + 1:<6d} " + " ".join(f"{curves[n][k][t]:21.3e}" for n, k in columns))
    return "\n".join(rows)


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
