"""Command line: parse arguments and dispatch. No logic lives here."""

from __future__ import annotations

import argparse
import sys

from .errors import AwdlstmError


def _data(args) -> None:
    from .data.summary import data_summary, synthetic_summary
    from .data.synthetic import SyntheticSpec

    if args.corpus == "synthetic":
        spec = SyntheticSpec(openers=args.openers, fillers=args.fillers, stop=args.stop,
                             train_lines=args.train_lines, eval_lines=args.eval_lines, seed=args.seed)
        print(synthetic_summary(spec, args.out))
    else:
        print(data_summary(args.corpus, args.data_dir, args.level, args.tokenizer,
                           download=not args.no_download))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="awdlstm", description=__doc__)
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
    d.set_defaults(func=_data)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except AwdlstmError as e:
        print(f"awdlstm: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("awdlstm: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
