"""The textbook's demonstrations of exploding and vanishing gradients, as it gives them.

Backpropagation through a tanh RNN multiplies the gradient by W_h^T at every step (and by
the tanh derivative, at most 1). The book's experiment leaves the tanh out: a batch of N = 2
gradients dh = ones(N, H), H = 3, multiplied T = 20 times by W_h^T for a Gaussian W_h,
recording ||dh||_F / N after each product. Repeated over several draws of W_h (and scaled,
as the book's second case, by 0.5), it shows the rule it states: if the largest singular
value of W_h is below 1 the norm must vanish (sufficient); above 1 it may explode, or not
(necessary, not sufficient: the spectral radius decides the long run). The derivative of
tanh, 1 - tanh(x)^2, is at most 1 and small away from 0, the other half of vanishing.
"""

from __future__ import annotations

import torch


def gaussian_products(draws: int = 8, steps: int = 20, hidden: int = 3, batch: int = 2, scale: float = 1.0,
                      seed: int = 0) -> list[dict]:
    """For each draw k: W_h = scale x N(0, 1) (hidden x hidden) from seed + k; the norms
    ||dh_t||_F / batch for t = 1..steps of dh_t = dh_{t-1} W_h^T, dh_0 = ones (float64)."""
    out = []
    for k in range(draws):
        w = torch.randn(hidden, hidden, generator=torch.Generator().manual_seed(seed + k), dtype=torch.float64) * scale
        dh = torch.ones(batch, hidden, dtype=torch.float64)
        norms = []
        for _ in range(steps):
            dh = dh @ w.t()
            norms.append(float(dh.norm() / batch))
        out.append({"draw": seed + k, "top_singular": float(torch.linalg.matrix_norm(w, 2)),
                    "spectral_radius": float(torch.linalg.eigvals(w).abs().max()), "norms": norms})
    return out


def tanh_and_derivative(lo: float = -6.0, hi: float = 6.0, points: int = 241):
    """(x, tanh x, 1 - tanh^2 x) on a grid."""
    x = torch.linspace(lo, hi, points, dtype=torch.float64)
    y = torch.tanh(x)
    return x.tolist(), y.tolist(), (1 - y * y).tolist()


def verdict(run: dict) -> str:
    grew = run["norms"][-1] > run["norms"][0]
    return "explodes" if grew else "vanishes"


def format_products(runs: list[dict], scale: float) -> str:
    rows = [f"W_h = {scale:g} x N(0, 1), 3 x 3, 20 products", "draw  top singular  spectral radius  ||dh_20||/N  "]
    for r in runs:
        note = "  (top singular > 1, yet it vanishes)" if r["top_singular"] > 1 and verdict(r) == "vanishes" else ""
        rows.append(f"{r['draw']:4d}  {r['top_singular']:12.3f}  {r['spectral_radius']:15.3f}  {r['norms'][-1]:11.3e}  "
                    f"{verdict(r)}{note}")
    return "\n".join(rows)


def plot_textbook(runs_by_scale: dict[float, list[dict]], path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    for scale, runs in runs_by_scale.items():
        for r in runs:
            color = "tab:red" if r["top_singular"] > 1 else "tab:blue"
            a.plot(range(1, len(r["norms"]) + 1), r["norms"], color=color, alpha=0.7,
                   ls="-" if scale == 1.0 else "--")
    a.set_yscale("log")
    a.set_xlabel("products t")
    a.set_ylabel("||dh_t||_F / N")
    a.set_title("dh W_h^T, Gaussian 3x3 W_h (red: top singular value > 1; dashed: x0.5)")
    a.grid(alpha=0.3)
    x, y, dy = tanh_and_derivative()
    b.plot(x, y, label="tanh x")
    b.plot(x, dy, label="d tanh / dx = 1 - tanh^2 x")
    b.set_xlabel("x")
    b.grid(alpha=0.3)
    b.legend()
    b.set_title("tanh and its derivative (at most 1)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
