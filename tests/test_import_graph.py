"""Imports run one way (data → model → config → checkpoints/runtime → train/evaluation/
inference → serve/export/classify/diagnostics → commands → cli), with no cycle."""

import importlib.util
from pathlib import Path

TOOL = Path(__file__).resolve().parents[1] / "tools" / "import_graph.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("import_graph", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_import_graph_has_no_violation():
    tool = load_tool()
    graph = tool.module_graph()
    assert "awdlstm.train.trainer" in graph and "awdlstm.model.lm" in graph  # it read the package
    assert tool.violations(graph) == []


def test_nothing_that_runs_a_trained_model_imports_train():
    tool = load_tool()
    parts = tool.part_graph(tool.module_graph())
    for part in ("data", "model", "config", "checkpoints", "runtime", "evaluation", "inference", "serve", "export"):
        assert "train" not in parts.get(part, set()), part
    assert "model" not in parts["config"] or "config" not in parts["model"]
    assert "config" not in parts["model"]


def test_the_checker_finds_a_backward_import_and_a_cycle():
    tool = load_tool()
    graph = {"awdlstm.model.lm": {"awdlstm.train.trainer"}, "awdlstm.train.trainer": {"awdlstm.train.snapshot"},
             "awdlstm.train.snapshot": {"awdlstm.train.trainer"}}
    bad = tool.violations(graph)
    assert any("awdlstm.model.lm -> awdlstm.train.trainer" in b for b in bad)
    assert any(b.startswith("cycle:") and "snapshot" in b for b in bad)
