"""Training and evaluating a classifier: batches of documents of similar length, gradual
unfreezing, discriminative learning rates and a slanted triangular schedule (ULMFiT)."""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..progress import progress_bar
from ..train.param_groups import layer_groups
from ..train.schedules.stlr import stlr
from .config import ClassifierConfig
from .model import Classifier


@dataclass
class Encoded:
    """Documents as token ids (each cut to max_tokens) with their label indices."""

    ids: list[list[int]]
    labels: list[int]


def batches(data: Encoded, batch_size: int, rng: random.Random | None) -> list[list[int]]:
    """Index batches of documents of similar length. Training (``rng``): shuffle, sort
    within chunks of 50 batches, shuffle the batches; evaluation: sorted by length."""
    order = list(range(len(data.ids)))
    length = lambda i: len(data.ids[i])  # noqa: E731
    if rng is None:
        order.sort(key=length, reverse=True)
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(order)
    chunk = 50 * batch_size
    order = [i for c in range(0, len(order), chunk) for i in sorted(order[c:c + chunk], key=length, reverse=True)]
    out = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(out)
    return out


def collate(data: Encoded, idx: list[int], pad: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> tokens (T, B) right-padded with ``pad``, lengths (B), labels (B)."""
    lengths = torch.tensor([len(data.ids[i]) for i in idx])
    tokens = torch.full((int(lengths.max()), len(idx)), pad, dtype=torch.long)
    for b, i in enumerate(idx):
        tokens[: lengths[b], b] = torch.tensor(data.ids[i])
    return tokens.to(device), lengths.to(device), torch.tensor([data.labels[i] for i in idx], device=device)


def trainable_groups(model: Classifier, epoch: int, unfreeze: str) -> int:
    """Gradual unfreezing: in epoch e (from 1) the top e groups train, the head being the
    top one; 'all' trains every group. Sets requires_grad and returns the count."""
    groups = model.groups()
    n = len(groups) if unfreeze == "all" else min(epoch, len(groups))
    for depth, params in enumerate(groups):
        for p in params:
            p.requires_grad_(depth >= len(groups) - n)
    return n


def train_classifier(model: Classifier, train: Encoded, valid: Encoded, cfg: ClassifierConfig, pad: int,
                     device, log=print, progress: bool = True) -> list[dict]:
    """Train in place; after each epoch evaluate on ``valid``. Returns one record per epoch."""
    rng = random.Random(cfg.seed)
    total = cfg.epochs * len(batches(train, cfg.batch_size, None))
    step, history = 0, []
    for epoch in range(1, cfg.epochs + 1):
        n = trainable_groups(model, epoch, cfg.unfreeze)
        # A new optimizer over the groups that train now; lower groups at lower rates.
        groups = layer_groups(model.groups(), cfg.lr_layer_decay)
        opt = torch.optim.Adam(groups, lr=cfg.lr, betas=(0.7, 0.99), weight_decay=cfg.weight_decay)
        model.train()
        loss_sum, count = 0.0, 0
        plan = batches(train, cfg.batch_size, rng)
        bar = progress_bar(plan, desc=f"classify epoch {epoch} ({n} of {len(model.groups())} groups)",
                           unit="batch", enabled=progress, dynamic_ncols=True)
        for idx in bar:
            if len(idx) < 2:
                continue  # batch norm needs two documents
            tokens, lengths, labels = collate(train, idx, pad, device)
            lr = stlr(cfg.lr, step / max(total - 1, 1), cfg.stlr_cut, cfg.stlr_ratio)
            for g in opt.param_groups:
                g["lr"] = lr * g["lr_scale"]
            loss = F.cross_entropy(model(tokens, lengths), labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            loss_sum += loss.item() * len(idx)
            count += len(idx)
            bar.set_postfix_str(f"loss {loss_sum / count:.4f}")
        result = evaluate_classifier(model, valid, pad, device, cfg.batch_size)
        rec = {"epoch": epoch, "groups_trained": n, "train_loss": loss_sum / max(count, 1),
               "valid_loss": result["loss"], "valid_accuracy": result["accuracy"]}
        history.append(rec)
        log(f"classify epoch {epoch} | {n} of {len(model.groups())} groups | train loss {rec['train_loss']:.4f} | "
            f"valid loss {result['loss']:.4f} | valid accuracy {result['accuracy']:.2%}")
    return history


@torch.no_grad()
def predict(model: Classifier, data: Encoded, pad: int, device, batch_size: int = 64) -> torch.Tensor:
    """Class probabilities (N, C), in the order of ``data``."""
    model.eval()
    probs = torch.empty(len(data.ids), model.head[-1].out_features)
    for idx in batches(data, batch_size, None):
        tokens, lengths, _ = collate(data, idx, pad, device)
        probs[idx] = F.softmax(model(tokens, lengths).float(), -1).cpu()
    return probs


def evaluate_classifier(model: Classifier, data: Encoded, pad: int, device, batch_size: int = 64) -> dict:
    """Loss, accuracy and the confusion matrix (rows: true label, columns: predicted)."""
    probs = predict(model, data, pad, device, batch_size)
    labels = torch.tensor(data.labels)
    pred = probs.argmax(1)
    C = probs.size(1)
    confusion = torch.zeros(C, C, dtype=torch.long)
    confusion.index_put_((labels, pred), torch.ones_like(labels), accumulate=True)
    loss = F.nll_loss(probs.clamp_min(1e-12).log(), labels).item()
    return {"loss": loss, "accuracy": (pred == labels).float().mean().item(), "confusion": confusion.tolist()}


def confusion_table(confusion: list[list[int]], labels: list[str]) -> str:
    """The confusion matrix as aligned text: a row per true label, a column per prediction."""
    width = max(8, *(len(x) + 1 for x in labels))
    lines = ["true \\ predicted".ljust(width * 2) + "".join(x.rjust(width) for x in labels)]
    for name, row in zip(labels, confusion):
        lines.append(name.ljust(width * 2) + "".join(str(v).rjust(width) for v in row))
    return "\n".join(lines)
