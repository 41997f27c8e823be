"""The command line: a parser built from the registered commands (commands/, commandline.py),
and the exit statuses. No command is written here."""

from __future__ import annotations

import argparse
import shlex
import sys

from .errors import AwdlstmError

DESCRIPTION = """Regularized recurrent language models (AWD-LSTM, zoneout, the book baseline):
train, evaluate, inspect and generate. Several processes: torchrun --nproc-per-node N -m awdlstm train ..."""


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .commandline import COMMANDS, GROUPS, add_arguments
    from .commands import __all__ as _registered  # noqa: F401 - importing registers every command
    p = argparse.ArgumentParser(prog="awdlstm", description=DESCRIPTION)
    p.add_argument("--version", action="version", version=f"awdlstm {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    groups: dict[str, argparse._SubParsersAction] = {}
    for name, cmd in COMMANDS.items():
        parent = sub
        group, _, leaf = name.rpartition(" ")
        if group:
            if group not in groups:
                gp = sub.add_parser(group, help=GROUPS.get(group))
                groups[group] = gp.add_subparsers(dest="action", required=True)
            parent = groups[group]
        cp = parent.add_parser(leaf, help=cmd.help, description=cmd.description or cmd.help)
        add_arguments(cp, cmd.func)
        cp.set_defaults(_command=cmd)
    return p


def main(argv: list[str] | None = None) -> int:
    from .commandline import call
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    try:
        call(args._command, args, shlex.join(["awdlstm", *map(str, argv)]))
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
            return e.status
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
