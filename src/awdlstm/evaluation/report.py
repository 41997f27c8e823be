"""A split's perplexity (or bpc) as `awdlstm eval` reports it: static, with the neural cache,
with dynamic evaluation, or both; and the cache's settings searched on validation."""

from __future__ import annotations

from ..data.metrics import format_units, metric, split_units
from ..errors import AwdlstmError
from ..runtime.evaluate import evaluate
from .cache import cache_loss, cache_settings, cache_target_probs, default_grid, tune
from .dynamic import score_dynamic
from .scored import score_static


def evaluate_split(model, data, cfg, split: str, batch_size: int | None = None, *, cache: bool = False,
                   window: int | None = None, theta: float | None = None, lam: float | None = None,
                   dynamic: bool = False, lr: float = 0.0, decay: float = 0.0, rule: str = "rms",
                   dyn_bptt: int = 5, progress: bool = False, log=print) -> dict:
    """Evaluate ``model`` on ``data``'s ``split``; log one line per result and return them."""
    if not (cache or dynamic):
        if batch_size is None:
            batch_size = cfg.train.batch_size_for(split)
        if batch_size < 1:
            raise AwdlstmError(f"--batch-size {batch_size}: must be a positive integer")
        loss = evaluate(model, data.split(split), batch_size, cfg.train.bptt, progress, split)
        name, value = metric(loss, data.level)
        units = split_units(data, split, loss)
        log(f"{split}: loss {loss:.4f} | {name} {value:.3f}{format_units(units)} | batch size {batch_size} | "
            f"{len(data.split(split)):,} tokens")
        return {"split": split, "loss": loss, name: value, **units}
    if batch_size not in (None, 1):
        raise AwdlstmError(f"--batch-size {batch_size}: the cache and dynamic evaluation read the split at batch 1")
    window, theta, lam = cache_settings(cfg.data.corpus, window, theta, lam)
    ids = data.split(split)
    if dynamic:
        scored = score_dynamic(model, ids, lr, decay, rule, dyn_bptt, train_ids=data.train, progress=progress)
        kind = f"dynamic ({rule}, lr {lr:g}, decay {decay:g}, segments of {dyn_bptt})"
    else:
        scored = score_static(model, ids, cfg.train.bptt, progress=progress)
        kind = "static"
    name, value = metric(scored.loss(), data.level)
    units = split_units(data, split, scored.loss())
    log(f"{split} {kind}: loss {scored.loss():.4f} | {name} {value:.3f}{format_units(units)}")
    result = {"split": split, "loss": scored.loss(), name: value, **units}
    if cache:
        pc = cache_target_probs(scored.hidden, scored.targets, theta, window)
        loss = cache_loss(scored.logp, pc, lam)
        name, value = metric(loss, data.level)
        units = split_units(data, split, loss)
        log(f"{split} {kind} + cache (window {window}, theta {theta:g}, lambda {lam:g}): "
            f"loss {loss:.4f} | {name} {value:.3f}{format_units(units)}")
        result.update({"cache_loss": loss, f"cache_{name}": value, **{f"cache_{k}": v for k, v in units.items()}})
    return result


def tune_cache(model, data, cfg, windows: list[int], progress: bool = False, log=print) -> tuple:
    """Grid-search theta and lambda for each window on the validation split; the best first."""
    if any(w < 1 for w in windows):
        raise AwdlstmError(f"--windows {windows}: every window must be >= 1")
    scored = score_static(model, data.valid, cfg.train.bptt, progress=progress)
    thetas, lambdas = default_grid()
    results = tune(scored.hidden, scored.targets, scored.logp, thetas, lambdas, windows)
    name, base = metric(scored.loss(), data.level)
    log(f"validation without cache: {name} {base:.3f}")
    for loss, w, t, l in results[:5]:
        log(f"  window {w:5d} theta {t:5.2f} lambda {l:6.3f}: {name} {metric(loss, data.level)[1]:.3f}")
    loss, w, t, l = results[0]
    log(f"best: --window {w} --theta {t:g} --lambda {l:g}")
    return results[0]
