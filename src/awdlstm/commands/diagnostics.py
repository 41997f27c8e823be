"""awdlstm gradflow, ablate, embeddings, report and kernels: looking inside models and runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from ..commandline import Arg, command
from ..errors import AwdlstmError
from ..runtime.machine import resolve_device
from .common import Device, folder, load


@command("gradflow", help="||dL/dh_t|| (and ||dL/dc_t||) through time: tanh RNN vs LSTM, clipping, W_h products; "
                          "with --compare, one cell under each regularizer (the zoneout paper's figure); with --run, "
                          "a trained model's own first layer")
def gradflow_cmd(run: Annotated[str | None, Arg("a trained run: its first layer as it is, its own cell and "
                                                "regularizer")] = None,
                 steps: Annotated[int | None, Arg("sequence length (default: 50; 200 with --compare or --run)")] = None,
                 hidden: Annotated[int, Arg("hidden size of the fresh cells")] = 100,
                 clip: Annotated[float, Arg("gradient-norm clip of the clipped curve")] = 1.0,
                 cell: Annotated[str, Arg("with --compare: the cell family", choices=("lstm", "gru", "rnn",
                                                                                       "layernorm-lstm"))] = "lstm",
                 compare: Annotated[list[str], Arg("regularizers to compare on one cell: none, zoneout, "
                                                   "recurrent-dropout, variational, batchnorm, batchnorm+zoneout",
                                                   nargs="+", metavar="REG")] = (),
                 textbook: Annotated[bool, Arg("the textbook's demonstration as it gives it: dh W_h^T 20 times for "
                                               "Gaussian 3x3 W_h over several draws, and tanh's derivative")] = False,
                 draws: Annotated[int, Arg("with --textbook: draws of W_h")] = 8,
                 out: Annotated[str, Arg("plot file")] = "gradflow.png",
                 log=print, device: Device = None) -> dict:
    from ..diagnostics import gradflow as g
    if textbook:
        from ..diagnostics import textbook as tb
        if draws < 1:
            raise AwdlstmError(f"--draws {draws}: must be a positive integer")
        runs = {scale: tb.gaussian_products(draws, scale=scale) for scale in (1.0, 0.5)}
        for scale, r in runs.items():
            log(tb.format_products(r, scale))
        tb.plot_textbook(runs, out)
        log(f"plot: {out}")
        return runs
    steps = steps if steps is not None else (200 if compare or run else 50)
    if steps < 2 or hidden < 1 or clip <= 0:
        raise AwdlstmError(f"--steps {steps} --hidden {hidden} --clip {clip}: need steps >= 2, hidden >= 1, clip > 0")
    if run and compare:
        raise AwdlstmError("--run reads a trained model's own layer; --compare builds fresh ones: give one")
    if compare or run:
        if run:
            model, _, _, _ = load(run, "cpu")
            curves, title = g.run_layer_norms(model, steps), f"Gradient flow through the first layer of {run}"
        else:
            curves, title = g.compare_regularizers(cell, list(compare), steps, hidden), \
                f"Gradient flow through one {cell} layer, {steps} steps"
        log(g.format_state_table(curves))
        g.plot_state_norms(curves, out, title)
    else:
        curves = g.gradflow(steps=steps, hidden=hidden, clip=clip, device=resolve_device(device))
        log(g.format_table(curves))
        g.plot_gradflow(curves, out)
    log(f"plot: {out}")
    return curves


@command("ablate", help="rerun a preset with one regularizer removed at a time (paper Table 4)")
def ablate_cmd(preset: Annotated[str, Arg("the recipe to ablate")] = "cpu-ptb",
               budget: Annotated[float | None, Arg("minutes of training per variant (default: the "
                                                   "preset's)")] = None,
               out: Annotated[str | None, Arg("folder of the variants' runs (default runs/ablate-<preset>)")] = None,
               sets: Annotated[list[str], Arg("applied to every variant", flag="--set", metavar="KEY=VALUE")] = (),
               jobs: Annotated[int | None, Arg("variants at once (default: the number of cores)")] = None,
               seeds: Annotated[list[int], Arg("train every variant once per seed; the table gives medians "
                                               "(default: the preset's seed)", nargs="+", metavar="SEED")] = (),
               log=print) -> str:
    from ..diagnostics.ablate import run_ablation
    if budget is not None and budget <= 0:
        raise AwdlstmError(f"--budget {budget}: minutes per variant must be positive")
    if len(set(seeds)) != len(seeds):
        raise AwdlstmError(f"--seeds {' '.join(map(str, seeds))}: a seed is given twice")
    out_dir = folder(out, "--out") or Path("runs") / f"ablate-{preset}"
    table = run_ablation(preset, out_dir, budget, list(sets), jobs, list(seeds), log)
    log(table)
    log(f"table: {out_dir / 'ablation.md'}, plot: {out_dir / 'ablation.png'}")
    return table


@command("embeddings", help="nearest neighbours, analogies and a 2-D plot of learned embeddings")
def embeddings_cmd(run: Annotated[str, Arg(positional=True, metavar="RUN_DIR|CKPT")],
                   words: Annotated[list[str], Arg("words whose neighbours to list", nargs="*")] = (),
                   analogy: Annotated[list[str], Arg("a is to b as c is to ?", nargs="*", metavar="A:B:C")] = (),
                   k: Annotated[int, Arg("neighbours to show", flag="-k")] = 8,
                   plot: Annotated[int, Arg("plot the N most frequent words (0: no plot)")] = 300,
                   out: Annotated[str | None, Arg("plot file (default RUN_DIR/embeddings.png)")] = None,
                   log=print, device: Device = None) -> None:
    from ..diagnostics.embeddings import analogy as solve
    from ..diagnostics.embeddings import neighbours, plot_projection, projection
    model, vocab, _, _ = load(run, device)
    emb = model.embedding.weight.detach()  # similarities on the device; the plot reads a CPU copy
    for w in words:
        log(f"{w}: " + ", ".join(f"{n} ({s:.2f})" for n, s in neighbours(emb, vocab, w, k)))
    for item in analogy:
        parts = item.split(":")
        if len(parts) != 3:
            raise AwdlstmError(f"--analogy {item!r}: write it as a:b:c (a is to b as c is to ?)")
        a, b, c = parts
        log(f"{a} : {b} :: {c} : " + ", ".join(f"{n} ({s:.2f})" for n, s in solve(emb, vocab, a, b, c, k)))
    if plot:
        n = min(plot, len(vocab))
        path = folder(out, "--out") or (Path(run) if Path(run).is_dir() else Path(run).parent) / "embeddings.png"
        plot_projection(projection(emb, n).cpu(), vocab.itos[:n], path, f"2-D PCA of the {n} most frequent words")
        log(f"plot: {path}")


@command("report", help="one self-contained HTML page for a run")
def report_cmd(run: Annotated[str, Arg(positional=True, metavar="RUN_DIR")],
               out: Annotated[str | None, Arg("default RUN_DIR/report.html")] = None, log=print) -> Path:
    from ..diagnostics.report import write_report
    path = write_report(Path(run), folder(out, "--out"))
    log(f"report: {path}")
    return path


@command("kernels", help="build (or find) the compiled CPU kernels now and say where they are")
def kernels_cmd(log=print) -> None:
    from ..model import native
    module = native.native()
    if module is None:
        raise AwdlstmError("the compiled CPU kernels are not available here (see the warning above); "
                           "training uses the PyTorch implementation")
    log(f"CPU kernels ready: {module.__file__}")
