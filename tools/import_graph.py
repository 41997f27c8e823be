"""Print awdlstm's import graph between its parts, and check that imports run one way.

    python tools/import_graph.py            # the graph between packages, then any violation
    python tools/import_graph.py --modules  # module by module

Every import counts: at the top of a file, inside a function, or under ``if TYPE_CHECKING:``
(an annotation that names a module above is a dependency on it all the same). The parts are the packages of
``src/awdlstm`` (``data``, ``model``, ...) and its top-level modules. LAYERS lists them
from the bottom up; a part may import only parts of a lower layer or its own, and no two
modules may import each other, directly or through others.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "awdlstm"

# Bottom to top. Parts in one layer may not import each other (except within a package).
LAYERS = [
    ["errors"],
    ["settings", "commandline", "progress"],  # typed configs; functions as commands; progress bars and log lines
    ["data"],
    ["model"],
    ["config"],  # the whole RunConfig that checkpoints store: data's, model's, train's sections
    ["checkpoints", "runtime"],  # checkpoint, run-folder, model-folder I/O; device, precision, kernels
    ["train", "evaluation", "inference"],
    ["serve", "export", "classify", "pixels", "diagnostics", "__init__"],  # __init__: the package's Python face
    ["commands"],  # one function per command, over the parts below
    ["cli"],  # the parser, generated from the commands' signatures
]
# Parts that load or run a trained model: never import train.
NO_TRAIN = {"data", "model", "config", "checkpoints", "runtime", "evaluation", "inference", "serve", "export"}


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_module(name: str) -> bool:
    path = ROOT.parent / name.replace(".", "/")
    return path.with_suffix(".py").is_file() or path.is_dir()


def imports_of(path: Path, name: str, is_pkg: bool) -> set[str]:
    """The awdlstm modules that ``path`` (module ``name``) imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if is_pkg else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("awdlstm")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if not mod.startswith("awdlstm"):
                continue
            # `from . import native` imports the module awdlstm.model.native; `from .x import y`, awdlstm.x.
            subs = {mod + "." + a.name for a in node.names if _is_module(mod + "." + a.name)}
            found |= subs
            if len(subs) < len(node.names):
                found.add(mod)
    return found


def module_graph() -> dict[str, set[str]]:
    graph = {}
    for path in sorted(ROOT.rglob("*.py")):
        name = module_name(path)
        graph[name] = imports_of(path, name, path.name == "__init__.py")
    known = set(graph)
    return {m: {d for d in deps if d in known and d != m} for m, deps in graph.items()}


def part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def part_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for m, deps in graph.items():
        out.setdefault(part(m), set()).update(part(d) for d in deps if part(d) != part(m))
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import against the layer order, into train from a part that must not, or in a cycle."""
    rank = {p: i for i, layer in enumerate(LAYERS) for p in layer}
    bad = []
    for m, deps in sorted(graph.items()):
        pm = part(m)
        if m.endswith("__main__"):
            continue  # `python -m awdlstm` runs the CLI
        for d in sorted(deps):
            pd = part(d)
            if pd == pm:
                continue
            if pm not in rank or pd not in rank:
                bad.append(f"{m} -> {d}: part {pm if pm not in rank else pd!r} is in no layer")
            elif rank[pd] >= rank[pm]:
                bad.append(f"{m} -> {d}: {pd} is not below {pm}")
            elif pm in NO_TRAIN and pd == "train":
                bad.append(f"{m} -> {d}: {pm} loads or runs trained models and must not import train")
    for comp in cycles(graph):
        bad.append("cycle: " + " <-> ".join(comp))
    return bad


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modules", action="store_true", help="print the graph module by module")
    args = ap.parse_args(argv)
    graph = module_graph()
    shown = graph if args.modules else part_graph(graph)
    for name in sorted(shown):
        print(f"{name:32s} -> {', '.join(sorted(shown[name])) or '-'}")
    bad = violations(graph)
    print(f"\n{len(bad)} violation(s)" + (":" if bad else ""))
    for line in bad:
        print("  " + line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
