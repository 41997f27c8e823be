"""Command line: parse arguments and dispatch to awdlstm.commands."""

from __future__ import annotations

import argparse
import shlex
import sys

from .errors import AwdlstmError


def _data(args) -> None:
    from .data.summary import data_summary, synthetic_summary
    from .data.synthetic import SyntheticSpec

    if args.corpus == "synthetic":
        spec = SyntheticSpec(openers=args.openers, fillers=args.fillers, stop=args.stop,
                             train_lines=args.train_lines, eval_lines=args.eval_lines, seed=args.seed)
        print(synthetic_summary(spec, args.out, args.labelled))
    else:
        print(data_summary(args.corpus, args.data_dir, args.level, args.tokenizer,
                           download=not args.no_download))


def _train(args) -> None:
    from . import commands
    from .config import describe_config, preset_names
    if args.help_config:
        print(describe_config() + "\n\npresets: " + ", ".join(preset_names()))
        return
    commands.train(args.preset, args.corpus, args.set, args.out, args.resume, device=args.device,
                   minutes=args.minutes, command=args.command_line)


def _finetune(args) -> None:
    from . import commands
    commands.finetune(args.run_dir, device=args.device, corpus=args.corpus, out=args.out, sets=args.set,
                      minutes=args.minutes)


def _distill(args) -> None:
    from . import commands
    commands.distill(args.teacher, args.preset, args.set, args.out, args.resume, corpus=args.corpus,
                     device=args.device, minutes=args.minutes, temperature=args.temperature,
                     soft_weight=args.soft_weight, hard_weight=args.hard_weight,
                     square_temperature=args.square_temperature, command=args.command_line)


def _classify(args) -> None:
    from .classify import commands
    if args.action == "train":
        commands.classify_train(args.lm, args.data, args.out, args.set, device=args.device)
    elif args.action == "eval":
        commands.classify_eval(args.model, args.data, device=args.device)
    else:
        commands.classify_predict(args.model, args.file, device=args.device)


def _eval(args) -> None:
    from . import commands
    commands.evaluate_cmd(args.run, args.split, args.batch_size, cache=args.cache, window=args.window,
                          theta=args.theta, lam=args.lam, dynamic=args.dynamic, lr=args.lr, decay=args.decay,
                          rule=args.rule, dyn_bptt=args.dyn_bptt, device=args.device)


def _tune_cache(args) -> None:
    from . import commands
    commands.tune_cache(args.run, args.windows, device=args.device)


def _generate(args) -> None:
    from . import commands
    commands.generate_cmd(args.run, args.tokens, args.prompt, args.temperature, args.top_k, args.top_p, args.seed,
                          device=args.device)


def _score(args) -> None:
    from . import commands
    commands.score_cmd(args.run, args.file, args.json, device=args.device, per_token=args.per_token,
                       batch_size=args.batch_size)


def _rescore(args) -> None:
    from . import commands
    commands.rescore_cmd(args.run, args.nbest, args.lm_scale, args.word_bonus, args.out, device=args.device,
                         batch_size=args.batch_size)


def _export(args) -> None:
    from . import commands
    commands.export_cmd(args.run, args.format, args.out, args.int8)


def _serve(args) -> None:
    from . import commands
    commands.serve_cmd(args.run, args.host, args.port, args.max_batch, args.max_wait_ms, device=args.device)


def _gradflow(args) -> None:
    from . import commands
    commands.gradflow_cmd(args.run, args.steps, args.hidden, args.clip, args.out, device=args.device)


def _ablate(args) -> None:
    from . import commands
    commands.ablate_cmd(args.preset, args.budget, args.out, args.set, args.jobs)


def _embeddings(args) -> None:
    from . import commands
    commands.embeddings_cmd(args.run, args.words, args.analogy, args.k, args.plot, args.out, device=args.device)


def _report(args) -> None:
    from . import commands
    commands.report_cmd(args.run, args.out)


def _kernels(args) -> None:
    from . import commands
    commands.kernels_cmd()


def _device_option(parser: argparse.ArgumentParser, default_text: str = "auto: CUDA when available, else CPU") -> None:
    parser.add_argument("--device", help=f"auto, cpu, cuda or cuda:N (default {default_text})")


DESCRIPTION = """Regularized recurrent language models (AWD-LSTM, zoneout, the book baseline):
train, evaluate, inspect and generate. Several processes: torchrun --nproc-per-node N -m awdlstm train ..."""


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    p = argparse.ArgumentParser(prog="awdlstm", description=DESCRIPTION)
    p.add_argument("--version", action="version", version=f"awdlstm {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("data", help="load a corpus and print its counts")
    d.add_argument("corpus", help="known name (ptb, wikitext-2, ptb-char, wikitext-103, text8, "
                                  "enwik8), 'synthetic', or a folder with train/valid/test files")
    d.add_argument("--data-dir", help="folder holding corpora by name (default: $AWDLSTM_DATA)")
    d.add_argument("--level", choices=("word", "char"), help="metric unit for a folder corpus")
    d.add_argument("--tokenizer", choices=("split", "chars"),
                   help="split on whitespace, or every character a token")
    d.add_argument("--no-download", action="store_true", help="never download a known corpus")
    g = d.add_argument_group("synthetic corpus")
    g.add_argument("--out", help="write the synthetic corpus to this folder (default: the cache)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--openers", type=int, default=8)
    g.add_argument("--fillers", type=int, default=16)
    g.add_argument("--stop", type=float, default=0.25)
    g.add_argument("--train-lines", type=int, default=6000)
    g.add_argument("--eval-lines", type=int, default=600)
    g.add_argument("--labelled", action="store_true", help="write train/valid/test.tsv of label<TAB>line for "
                                                            "`classify` (label: does w0 occur in the line); needs --out")
    d.set_defaults(func=_data)

    t = sub.add_parser("train", help="train a model (default preset: cpu-ptb)")
    t.add_argument("--preset", help="recipe name (see --help-config); default cpu-ptb")
    t.add_argument("--corpus", help="corpus name or folder, overriding the preset's")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set model.dropout_emb=0 --set train.epochs=3")
    t.add_argument("--out", help="run folder (default runs/<preset>-<time>)")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run exactly")
    t.add_argument("--minutes", type=float, metavar="N",
                   help="wall-clock budget of training in minutes (train.max_minutes), overriding the preset's")
    t.add_argument("--help-config", action="store_true", help="list every config key and the presets")
    _device_option(t, "the preset's train.device, auto")
    t.set_defaults(func=_train)

    f = sub.add_parser("finetune", help="continue from the best averaged weights with ASGD (NT-ASGD fine-tuning); "
                                        "with --corpus, fine-tune on another corpus and vocabulary (ULMFiT)")
    f.add_argument("run_dir", metavar="RUN")
    f.add_argument("--corpus", help="fine-tune the language model on this corpus (name or folder): shared words "
                                    "keep their embeddings, new ones start from the mean")
    f.add_argument("--out", help="with --corpus: the new run folder (default runs/<RUN>-to-<corpus>)")
    f.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="with --corpus: override the run's config, e.g. --set train.schedule=stlr "
                        "--set train.lr_layer_decay=2.6 --set train.epochs=3")
    f.add_argument("--minutes", type=float, metavar="N", help="with --corpus: wall-clock budget in minutes")
    _device_option(f, "the run's train.device")
    f.set_defaults(func=_finetune)

    ds = sub.add_parser("distill", help="train a student model on a teacher's corpus and softened distribution: "
                                        "w_soft T^2 KL(teacher_T || student_T) + w_hard CE")
    ds.add_argument("teacher", nargs="?", metavar="TEACHER", help="the teacher's run, checkpoint or model folder")
    ds.add_argument("--preset", help="the student's recipe (default cpu-ptb); its corpus is replaced by the "
                                     "teacher's")
    ds.add_argument("--corpus", help="another corpus with the teacher's vocabulary")
    ds.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override the student's config")
    ds.add_argument("--out", help="run folder (default runs/distill-<preset>-<time>)")
    ds.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted distillation exactly")
    ds.add_argument("--minutes", type=float, metavar="N", help="wall-clock budget of training in minutes")
    ds.add_argument("--temperature", type=float, help="T (default 1)")
    ds.add_argument("--soft-weight", type=float, help="w_soft (default 0.5)")
    ds.add_argument("--hard-weight", type=float, help="w_hard (default 0.5)")
    ds.add_argument("--no-square-temperature", dest="square_temperature", action="store_const", const=False,
                    help="leave out the T^2 factor of the soft loss")
    _device_option(ds, "the preset's train.device, auto")
    ds.set_defaults(func=_distill)

    cl = sub.add_parser("classify", help="a text classifier on a language model's encoder (ULMFiT): train, eval, "
                                         "predict")
    clsub = cl.add_subparsers(dest="action", required=True)
    ct = clsub.add_parser("train", help="train on label<TAB>text lines; prints accuracy and a confusion table",
                          description="DATA: a file of label<TAB>text lines (.tsv or .txt; .csv: label,text "
                                      "columns), or a folder with train and optionally valid/test files in that "
                                      "format. Without a validation file, 10%% of the training lines are held out.")
    ct.add_argument("lm", metavar="LM", help="the language model (run, checkpoint or model folder), best "
                                             "fine-tuned on the texts to classify")
    ct.add_argument("data", metavar="DATA")
    ct.add_argument("--out", required=True, help="the classifier's folder")
    ct.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="classifier settings, e.g. --set epochs=6 --set unfreeze=all (see awdlstm/classify/config.py)")
    _device_option(ct)
    ce = clsub.add_parser("eval", help="accuracy and confusion table on labelled lines")
    ce.add_argument("model", metavar="CLASSIFIER", help="the folder `classify train --out` wrote")
    ce.add_argument("data", metavar="DATA", help="a labelled file, or a folder (its test file, else valid)")
    _device_option(ce)
    cp = clsub.add_parser("predict", help="label each line of a file (- reads standard input)")
    cp.add_argument("model", metavar="CLASSIFIER")
    cp.add_argument("file")
    _device_option(cp)
    cl.set_defaults(func=_classify)

    e = sub.add_parser("eval", help="loss and perplexity (or bpc) of a checkpoint on a full split")
    e.add_argument("run", metavar="RUN|CKPT|MODEL_DIR")
    e.add_argument("--split", choices=("valid", "test"), default="test")
    e.add_argument("--batch-size", type=int, help="default: validation 10, test 1 (AWD protocol)")
    c = e.add_argument_group("neural cache (Grave et al. 2017)")
    c.add_argument("--cache", action="store_true", help="interpolate with a cache pointer over recent hidden states")
    c.add_argument("--window", type=int, help="cache size (PTB 500, WT2 3785)")
    c.add_argument("--theta", type=float, help="flatness of the cache distribution (PTB 1.0, WT2 0.662)")
    c.add_argument("--lambda", dest="lam", type=float, help="cache weight (PTB 0.1, WT2 0.1279)")
    dy = e.add_argument_group("dynamic evaluation (Krause et al. 2018)")
    dy.add_argument("--dynamic", action="store_true", help="adapt the weights to each segment after scoring it")
    dy.add_argument("--rule", choices=("rms", "sgd"), default="rms")
    dy.add_argument("--lr", type=float, default=2e-5)
    dy.add_argument("--decay", type=float, default=0.02, help="pull toward the trained weights")
    dy.add_argument("--dyn-bptt", type=int, default=5, help="segment length")
    _device_option(e)
    e.set_defaults(func=_eval)

    tc = sub.add_parser("tune-cache", help="search the cache's theta, lambda and window on the validation split")
    tc.add_argument("run", metavar="RUN_DIR|CKPT")
    tc.add_argument("--windows", type=int, nargs="+", default=[100, 500, 2000])
    _device_option(tc)
    tc.set_defaults(func=_tune_cache)

    g = sub.add_parser("generate", help="sample text from a checkpoint")
    g.add_argument("run", metavar="RUN|CKPT|MODEL_DIR")
    g.add_argument("--tokens", type=int, default=100)
    g.add_argument("--prompt", default="")
    g.add_argument("--temperature", type=float, default=1.0, help="0 is greedy")
    g.add_argument("--top-k", type=int, default=0)
    g.add_argument("--top-p", type=float, default=1.0)
    g.add_argument("--seed", type=int)
    _device_option(g)
    g.set_defaults(func=_generate)

    s = sub.add_parser("score", help="log-probability and perplexity of each line of a file")
    s.add_argument("run", metavar="RUN|CKPT|MODEL_DIR")
    s.add_argument("file", help="one text per line; - reads standard input")
    s.add_argument("--json", action="store_true", help="JSON (with --per-token: JSON lines)")
    s.add_argument("--per-token", action="store_true",
                   help="one row per token: sentence_id, token_index, token, scored_as, surprisal_bits (TSV)")
    s.add_argument("--batch-size", type=int, default=64, help="lines read at once (default 64)")
    _device_option(s)
    s.set_defaults(func=_score)

    rs = sub.add_parser("rescore", help="re-rank n-best lists: first-pass score + lm_scale x LM log-probability",
                        description="N-best file: one hypothesis per line, utterance_id<TAB>first_pass_score<TAB>"
                                    "text (higher scores are better). Writes each utterance's hypotheses best first.")
    rs.add_argument("run", metavar="RUN|CKPT|MODEL_DIR")
    rs.add_argument("nbest", help="the n-best file; - reads standard input")
    rs.add_argument("--lm-scale", type=float, default=1.0, help="weight of the LM log-probability (nats; default 1)")
    rs.add_argument("--word-bonus", type=float, default=0.0, help="added per word of a hypothesis (default 0)")
    rs.add_argument("--out", help="write the re-ranked lists here (default: standard output)")
    rs.add_argument("--batch-size", type=int, default=64)
    _device_option(rs)
    rs.set_defaults(func=_rescore)

    ex = sub.add_parser("export", help="write a model folder (config.json, model.safetensors, vocab.json, "
                                       "README.md) or an ONNX file")
    ex.add_argument("run", metavar="RUN|CKPT|MODEL_DIR")
    ex.add_argument("--format", choices=("folder", "onnx"), default="folder")
    ex.add_argument("--out", required=True, help="the folder, or the .onnx file, to write")
    ex.add_argument("--int8", action="store_true", help="with --format onnx: also write FILE.int8.onnx "
                                                        "(ONNX Runtime dynamic quantization)")
    ex.set_defaults(func=_export)

    sv = sub.add_parser("serve", help="JSON over HTTP: next-word top-k, per-token scores, streamed generation, "
                                      "and a page to try them")
    sv.add_argument("run", metavar="RUN|CKPT|MODEL_DIR")
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--max-batch", type=int, default=32, help="requests batched into one forward (1: one at a time)")
    sv.add_argument("--max-wait-ms", type=float, default=5.0, help="how long a batch waits for more requests")
    _device_option(sv)
    sv.set_defaults(func=_serve)

    gf = sub.add_parser("gradflow", help="||dL/dh_t|| through time: tanh RNN vs LSTM, clipping, W_h products")
    gf.add_argument("--run", help="take the LSTM from this checkpoint's first layer (default: fresh weights)")
    gf.add_argument("--steps", type=int, default=50)
    gf.add_argument("--hidden", type=int, default=100, help="hidden size of the fresh cells")
    gf.add_argument("--clip", type=float, default=1.0)
    gf.add_argument("--out", default="gradflow.png")
    _device_option(gf)
    gf.set_defaults(func=_gradflow)

    ab = sub.add_parser("ablate", help="rerun a preset with one regularizer removed at a time (paper Table 4)")
    ab.add_argument("--preset", default="cpu-ptb")
    ab.add_argument("--budget", type=float, help="minutes of training per variant (default: the preset's)")
    ab.add_argument("--out", help="folder of the variants' runs (default runs/ablate-<preset>)")
    ab.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="applied to every variant")
    ab.add_argument("--jobs", type=int, help="variants at once (default: the number of cores)")
    ab.set_defaults(func=_ablate)

    em = sub.add_parser("embeddings", help="nearest neighbours, analogies and a 2-D plot of learned embeddings")
    em.add_argument("run", metavar="RUN_DIR|CKPT")
    em.add_argument("--words", nargs="*", default=[])
    em.add_argument("--analogy", nargs="*", default=[], metavar="A:B:C", help="a is to b as c is to ?")
    em.add_argument("-k", type=int, default=8, help="neighbours to show")
    em.add_argument("--plot", type=int, default=300, help="plot the N most frequent words (0: no plot)")
    em.add_argument("--out", help="plot file (default RUN_DIR/embeddings.png)")
    _device_option(em)
    em.set_defaults(func=_embeddings)

    rp = sub.add_parser("report", help="one self-contained HTML page for a run")
    rp.add_argument("run", metavar="RUN_DIR")
    rp.add_argument("--out", help="default RUN_DIR/report.html")
    rp.set_defaults(func=_report)

    k = sub.add_parser("kernels", help="build (or find) the compiled CPU kernels now and say where they are")
    k.set_defaults(func=_kernels)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.command_line = shlex.join(["awdlstm", *map(str, argv)])
    try:
        args.func(args)
    except AwdlstmError as e:
        print(f"awdlstm: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("awdlstm: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - only the train loop's Interrupted is expected here
        from .train.trainer import Interrupted
        if isinstance(e, Interrupted):
            print(f"awdlstm: {e}", file=sys.stderr)
            return 130
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
