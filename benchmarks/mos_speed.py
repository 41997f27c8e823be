"""The mixture-of-softmaxes head per token: awdlstm's ``MixtureOfSoftmaxes`` against the
reference implementation's head (Yang et al.'s zihangdai/mos, its model.py), ported here in
a few lines to current PyTorch for the comparison only. Same shape, same weights, one
process, interleaved; forward (the training loss) + backward.

    python benchmarks/mos_speed.py [--shapes paper small] [--reps 9]

The reference mixes the experts in probability space: softmax of every expert's (N, V)
logits, times the prior, summed, then log(p + 1e-8). awdlstm's computes
logsumexp_k(log π_k + logit_{k,y} − logsumexp_w logit_{k,w}): the target's log-probability
without materializing a (N, K, V) softmax.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from common import interleaved, ratio
from torch import nn

from awdlstm.model.mos import MixtureOfSoftmaxes

SHAPES = {
    # name: (T, B, last layer D, embedding E, experts K, vocabulary V)
    "paper": (70, 12, 620, 280, 15, 10000),  # the MoS paper's PTB model (its README's command)
    "small": (35, 32, 256, 256, 5, 10000),  # cpu-ptb's sizes, 5 experts (the successors run)
}


class ReferenceMoS(nn.Module):
    """The reference's head: prior (no bias), latent Linear + Tanh, decoder; the mixture in
    probability space and the log of it plus 1e-8 (its dropouts off, as in evaluation)."""

    def __init__(self, ours: MixtureOfSoftmaxes):
        super().__init__()
        self.experts, self.emb = ours.experts, ours.emb_size
        self.prior = nn.Linear(ours.prior.in_features, ours.experts, bias=False)
        self.latent = nn.Sequential(nn.Linear(ours.latent.in_features, ours.latent.out_features), nn.Tanh())
        self.decoder = nn.Linear(ours.emb_size, ours.weight.size(0))
        with torch.no_grad():  # the same weights as ours
            self.prior.weight.copy_(ours.prior.weight)
            self.latent[0].weight.copy_(ours.latent.weight)
            self.latent[0].bias.copy_(ours.latent.bias)
            self.decoder.weight.copy_(ours.weight)
            self.decoder.bias.copy_(ours.bias)

    def forward(self, output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        n = output.size(0) * output.size(1)
        latent = self.latent(output)
        logit = self.decoder(latent.view(-1, self.emb))
        prior = F.softmax(self.prior(output).contiguous().view(-1, self.experts), -1)
        prob = F.softmax(logit.view(-1, logit.size(-1)), -1).view(n, self.experts, -1)
        prob = (prob * prior.unsqueeze(2).expand_as(prob)).sum(1)
        return F.nll_loss(torch.log(prob.add_(1e-8)), targets.reshape(-1))


def measure(shape: str, reps: int) -> None:
    T, B, D, E, K, V = SHAPES[shape]
    torch.manual_seed(0)
    ours = MixtureOfSoftmaxes(D, E, V, K, dropout_latent=0.0).eval()
    ref = ReferenceMoS(ours).eval()
    x = torch.randn(T, B, D)
    y = torch.randint(0, V, (T, B))
    with torch.no_grad():
        a = -ours.target_log_prob(x, y).mean()
        b = ref(x, y)
    print(f"{shape}: T {T}, B {B}, D {D}, E {E}, K {K}, V {V}; loss ours {a.item():.5f}, reference {b.item():.5f}")

    def run_ours():
        xx = x.clone().requires_grad_(True)
        (-ours.target_log_prob(xx, y).mean()).backward()

    def run_ref():
        xx = x.clone().requires_grad_(True)
        ref(xx, y).backward()

    times = interleaved({"ours": run_ours, "reference": run_ref}, reps=reps)
    tokens = T * B
    for name, ts in times.items():
        ts = sorted(ts)
        print(f"  {name:10s} {tokens / ts[len(ts) // 2]:10,.0f} tokens/s (median of {reps})")
    print(f"  ours / reference: {ratio(times, 'ours', 'reference'):.3f}x (median of per-pair ratios)")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    p.add_argument("--reps", type=int, default=9)
    args = p.parse_args()
    for shape in args.shapes:
        measure(shape, args.reps)


if __name__ == "__main__":
    main()
