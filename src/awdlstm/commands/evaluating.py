"""awdlstm eval and tune-cache."""

from __future__ import annotations

from typing import Annotated

from ..commandline import Arg, command
from ..evaluation import dynamic as dyn
from ..evaluation.report import evaluate_split, tune_cache
from .common import Device, Run, model_and_corpus, progress

CACHE = "neural cache (Grave et al. 2017)"
DYNAMIC = "dynamic evaluation (Krause et al. 2018)"


@command("eval", help="loss and perplexity (or bpc) of a checkpoint on a full split")
def evaluate_cmd(run: Run,
                 split: Annotated[str, Arg("the split to evaluate", choices=("valid", "test"))] = "test",
                 batch_size: Annotated[int | None, Arg("default: validation 10, test 1 (AWD protocol: "
                                                       "train.eval_batch_size, train.test_batch_size)")] = None,
                 log=print,
                 cache: Annotated[bool, Arg("interpolate with a cache pointer over recent hidden states",
                                            group=CACHE)] = False,
                 window: Annotated[int | None, Arg("cache size (PTB 500, WT2 3785)", group=CACHE)] = None,
                 theta: Annotated[float | None, Arg("flatness of the cache distribution (PTB 1.0, WT2 0.662)",
                                                    group=CACHE)] = None,
                 lam: Annotated[float | None, Arg("cache weight (PTB 0.1, WT2 0.1279)", flag="--lambda",
                                                  group=CACHE)] = None,
                 dynamic: Annotated[bool, Arg("adapt the weights to each segment after scoring it",
                                              group=DYNAMIC)] = False,
                 lr: Annotated[float, Arg("learning rate", group=DYNAMIC)] = dyn.DEFAULT_LR,
                 decay: Annotated[float, Arg("pull toward the trained weights", group=DYNAMIC)] = dyn.DEFAULT_DECAY,
                 rule: Annotated[str, Arg("update rule", choices=dyn.RULES, group=DYNAMIC)] = dyn.DEFAULT_RULE,
                 dyn_bptt: Annotated[int, Arg("segment length", group=DYNAMIC)] = dyn.DEFAULT_BPTT,
                 device: Device = None) -> dict:
    model, cfg, data = model_and_corpus(run, device)
    return evaluate_split(model, data, cfg, split, batch_size, cache=cache, window=window, theta=theta, lam=lam,
                          dynamic=dynamic, lr=lr, decay=decay, rule=rule, dyn_bptt=dyn_bptt,
                          progress=progress(), log=log)


@command("tune-cache", help="search the cache's theta, lambda and window on the validation split")
def tune_cache_cmd(run: Annotated[str, Arg(positional=True, metavar="RUN_DIR|CKPT")],
                   windows: Annotated[list[int], Arg("cache sizes to try", nargs="+")] = (100, 500, 2000),
                   log=print, device: Device = None) -> tuple:
    model, cfg, data = model_and_corpus(run, device)
    return tune_cache(model, data, cfg, list(windows), progress(), log)
