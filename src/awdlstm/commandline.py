"""How a typed function becomes a command of the ``awdlstm`` CLI: each command is defined
once, as one function whose signature is its command line.

    @command("generate", help="sample text from a checkpoint")
    def generate_cmd(run: Annotated[str, Arg("RUN|CKPT|MODEL_DIR", positional=True)],
                     tokens: Annotated[int, Arg("tokens to sample")] = 100, log=print) -> None: ...

A parameter annotated ``Annotated[T, Arg(...)]`` is a command-line argument: positional,
or the option ``--name-with-dashes`` (``Arg.flag`` names another); its default is the
signature's, the only place it is written. ``bool`` is a switch (``negate``: the option
turns a True default off), ``list[str]`` a repeatable option, ``list[int]`` a list of
values; ``T | None`` with default None is an option that may be absent. Parameters
without ``Arg`` (``log``, output streams) are for Python callers only; a parameter named
``command_line`` receives the command line as typed. cli.py builds the parser from
``COMMANDS``; nothing else about a command is written anywhere.
"""

from __future__ import annotations

import argparse
import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any


@dataclass(frozen=True)
class Arg:
    """One command-line argument's description (the type and default are the parameter's)."""

    help: str = ""
    flag: str | None = None  # the option's name(s), e.g. "--lambda" or "-k"; default --param-name
    positional: bool = False
    choices: tuple | None = None
    metavar: str | None = None
    nargs: str | None = None  # "?" for an optional positional, "+" for a list of values
    group: str | None = None  # the title of the help section it is listed under
    negate: bool = False  # bool: the option stores False (e.g. --no-square-temperature)
    required: bool = False


@dataclass
class Command:
    name: str  # "eval", or "classify train" for a command of a group
    func: Callable
    help: str
    description: str | None = None


# The --device option of every command that runs a model.
Device = Annotated[str | None, Arg("auto, cpu, cuda or cuda:N (default auto: CUDA when available, else CPU)")]

COMMANDS: dict[str, Command] = {}
GROUPS: dict[str, str] = {}  # a group of commands ("classify") -> its help


def command(name: str, help: str, description: str | None = None):
    """Register the decorated function as the command ``name``."""
    def register(func):
        COMMANDS[name] = Command(name, func, help, description)
        return func
    return register


def command_group(name: str, help: str) -> None:
    GROUPS[name] = help


def arguments(func) -> list[tuple[str, Any, Any, Arg]]:
    """(parameter, type, default, Arg) of each command-line parameter of ``func``."""
    hints = typing.get_type_hints(func, include_extras=True)
    out = []
    for p in inspect.signature(func).parameters.values():
        hint = hints.get(p.name)
        if typing.get_origin(hint) is not Annotated:
            continue
        base, *extras = typing.get_args(hint)
        arg = next((e for e in extras if isinstance(e, Arg)), None)
        if arg is not None:
            out.append((p.name, base, None if p.default is inspect.Parameter.empty else p.default, arg))
    return out


def _without_none(typ):
    if typing.get_origin(typ) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        return args[0] if len(args) == 1 else typ
    return typ


def _help(arg: Arg, default) -> str:
    if default in (None, False, (), []) or arg.positional and arg.nargs != "?":
        return arg.help
    shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else default
    return f"{arg.help} (default {shown})" if arg.help else f"default {shown}"


def add_arguments(parser: argparse.ArgumentParser, func) -> None:
    """Add ``func``'s command-line parameters to ``parser`` (dest = the parameter's name)."""
    groups: dict[str, Any] = {}
    for name, typ, default, arg in arguments(func):
        target = parser
        if arg.group:
            target = groups.get(arg.group) or groups.setdefault(arg.group, parser.add_argument_group(arg.group))
        base = _without_none(typ)
        kw: dict[str, Any] = {"help": _help(arg, default)}
        if arg.choices:
            kw["choices"] = arg.choices
        if arg.metavar:
            kw["metavar"] = arg.metavar
        if arg.positional:
            if arg.nargs:
                kw["nargs"], kw["default"] = arg.nargs, default
            target.add_argument(name, type=base if base in (int, float) else None, **kw)
            continue
        flags = [arg.flag] if arg.flag else [f"--{name.replace('_', '-')}"]
        kw["dest"] = name
        if base is bool:
            kw["action"], kw["default"] = ("store_false" if arg.negate else "store_true"), default
            kw.pop("choices", None)
        elif typing.get_origin(base) is list:
            (item,) = typing.get_args(base)
            kw["type"] = item
            if arg.nargs:
                kw["nargs"], kw["default"] = arg.nargs, list(default or [])
            else:  # repeated: --set a --set b
                kw["action"], kw["default"] = "append", list(default or [])
        else:
            kw["type"], kw["default"] = base, default
        if arg.required:
            kw["required"] = True
        target.add_argument(*flags, **kw)


def call(cmd: Command, namespace: argparse.Namespace, command_line: str):
    """Run ``cmd`` with the parsed arguments."""
    kwargs = {name: getattr(namespace, name) for name, *_ in arguments(cmd.func)}
    if "command_line" in inspect.signature(cmd.func).parameters:
        kwargs["command_line"] = command_line
    return cmd.func(**kwargs)
