import json

from safetensors import safe_open

from awdlstm.cli import main
from awdlstm.diagnostics.ablate import PAPER_DELTAS


def config_of(run_dir):
    with safe_open(str(run_dir / "best.safetensors"), "pt") as f:
        return json.loads(f.metadata()["awdlstm"])["config"]


def flat(cfg):
    return {f"{section}.{k}": v for section, values in cfg.items() for k, v in values.items()}


def test_ablation_runs_every_variant_and_resumes(capsys, tmp_path):
    out = tmp_path / "abl"
    # tiny has no schedule; under NT-ASGD the ablation has the paper's every row
    args = ["ablate", "--preset", "tiny", "--out", str(out), "--set", "train.epochs=1",
            "--set", "train.finetune_epochs=1", "--set", "train.schedule=ntasgd", "--set", "train.alpha=1",
            "--set", "train.beta=1", "--jobs", "2", "--seeds", "3", "4"]
    assert main(args) == 0
    table = (out / "ablation.md").read_text()
    for label in PAPER_DELTAS:
        assert f"| {label} |" in table, label
    assert (out / "ablation.png").stat().st_size > 1000
    assert "Medians over 2 seed(s)" in table
    for seed in (3, 4):
        assert (out / f"seed-{seed}" / "full" / "results-finetune.json").is_file()
    # Every variant differs from its seed's full model in exactly its own settings.
    full = flat(config_of(out / "seed-3" / "full"))
    for name, removed in {"no-weight-drop": {"model.weight_drop"}, "no-ar-tar": {"train.alpha", "train.beta"},
                          "no-nt-asgd": {"train.schedule"}, "no-variable-bptt": {"train.variable_bptt"}}.items():
        cfg = flat(config_of(out / "seed-3" / name))
        assert {k for k in cfg if cfg[k] != full[k]} == removed, name
    other = flat(config_of(out / "seed-4" / "full"))
    assert {k for k in other if other[k] != full[k]} == {"train.seed"}
    # The median of each row's per-seed differences, with the rows read back from the runs.
    from awdlstm.diagnostics.ablate import _results
    rows = _results(out)
    assert len(rows["- weight drop"]["d_valid"]) == 2
    d = sorted(rows["- weight drop"]["d_valid"])
    assert f"| {sum(d) / 2:+.2f} |" in table.split("| - weight drop |")[1].splitlines()[0]
    # A second call finds every variant done and trains nothing.
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("results*.json")}
    (out / "seed-4" / "no-ar-tar" / "results.json").unlink()  # as if that variant had been interrupted
    capsys.readouterr()
    assert main(args) == 0
    log = capsys.readouterr().out
    assert "ablate: seed-4/no-ar-tar" in log and "no-weight-drop" not in log
    for p, t in stamps.items():
        if p.exists() and "seed-4/no-ar-tar" not in str(p):
            assert p.stat().st_mtime_ns == t


def test_the_schedule_variant_removes_the_presets_own_schedule():
    from awdlstm.diagnostics.ablate import variants
    assert variants("awd-ptb", [])["no-nt-asgd"] == ["train.schedule=none"]
    budget = variants("cpu-ptb", [])
    assert budget["no-budget-schedule"] == ["train.schedule=none"] and "no-nt-asgd" not in budget
    assert "no-nt-asgd" not in variants("tiny", []) and "no-budget-schedule" not in variants("tiny", [])
    # The CPU-scale preset: every row of the paper's table, the schedule row removing the budget schedule.
    from awdlstm.diagnostics.ablate import LABELS
    study = variants("study-ptb", [])
    assert {LABELS[name] for name in study if name != "full"} | {"- fine-tuning"} == set(PAPER_DELTAS)
    assert study["no-reduced-embedding"] == ["model.emb_size=384"]
