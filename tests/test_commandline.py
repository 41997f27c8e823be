"""Each command is defined once: its parser is built from its typed signature, whose
defaults are the only ones."""

import inspect
from typing import Annotated

import pytest

from awdlstm.cli import build_parser
from awdlstm.commandline import COMMANDS, Arg, Command, add_arguments, arguments, call


def parse(argv):
    return build_parser().parse_args(argv)


def test_every_registered_command_is_on_the_command_line():
    build_parser()
    names = set(COMMANDS)
    for expected in ("data", "train", "finetune", "distill", "eval", "tune-cache", "generate", "score", "rescore",
                     "export", "serve", "classify train", "classify eval", "classify predict", "gradflow", "ablate",
                     "embeddings", "report", "kernels"):
        assert expected in names
    for name, cmd in COMMANDS.items():
        params = inspect.signature(cmd.func).parameters
        for arg_name, _, default, arg in arguments(cmd.func):
            assert params[arg_name].default is inspect.Parameter.empty or params[arg_name].default == default
            assert arg.help or arg.positional, f"{name} {arg_name} has no help"


def test_the_parsed_defaults_are_the_signatures():
    from awdlstm.evaluation import dynamic
    args = parse(["eval", "runs/x"])
    assert args.lr == dynamic.DEFAULT_LR and args.decay == dynamic.DEFAULT_DECAY and args.rule == dynamic.DEFAULT_RULE
    assert args.split == "test" and args.lam is None and args.cache is False
    args = parse(["eval", "runs/x", "--lambda", "0.2", "--dynamic", "--rule", "sgd"])
    assert args.lam == 0.2 and args.dynamic and args.rule == "sgd"
    args = parse(["train", "--set", "a=1", "--set", "b=2"])
    assert args.sets == ["a=1", "b=2"] and parse(["train"]).sets == []
    assert parse(["tune-cache", "r"]).windows == [100, 500, 2000]
    assert parse(["distill", "t", "--no-square-temperature"]).square_temperature is False
    assert parse(["distill", "t"]).square_temperature is None
    assert parse(["embeddings", "r", "-k", "3", "--words", "a", "b"]).k == 3
    assert parse(["classify", "train", "lm", "data", "--out", "o"]).out == "o"


def test_a_choice_outside_the_list_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as e:
        parse(["eval", "r", "--split", "train"])
    assert e.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_a_signature_becomes_a_parser_and_a_call():
    import argparse
    seen = {}

    def demo(path: Annotated[str, Arg("a path", positional=True)],
             count: Annotated[int, Arg("how many")] = 3,
             names: Annotated[list[str], Arg("repeatable", flag="--name")] = (),
             quiet: Annotated[bool, Arg("no output")] = False,
             log=print, command_line: str | None = None):
        seen.update(path=path, count=count, names=names, quiet=quiet, command_line=command_line)

    parser = argparse.ArgumentParser()
    add_arguments(parser, demo)
    assert "(default 3)" in parser.format_help()
    ns = parser.parse_args(["p", "--count", "5", "--name", "a", "--name", "b", "--quiet"])
    call(Command("demo", demo, "help"), ns, "awdlstm demo p")
    assert seen == {"path": "p", "count": 5, "names": ["a", "b"], "quiet": True, "command_line": "awdlstm demo p"}
