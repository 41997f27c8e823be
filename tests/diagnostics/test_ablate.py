from awdlstm.cli import main
from awdlstm.diagnostics.ablate import PAPER_DELTAS


def test_ablation_runs_every_variant_and_resumes(capsys, tmp_path):
    out = tmp_path / "abl"
    # tiny has no schedule; under NT-ASGD the ablation has the paper's every row
    args = ["ablate", "--preset", "tiny", "--out", str(out), "--set", "train.epochs=1",
            "--set", "train.finetune_epochs=1", "--set", "train.schedule=ntasgd", "--jobs", "2"]
    assert main(args) == 0
    table = (out / "ablation.md").read_text()
    for label in PAPER_DELTAS:
        assert f"| {label} |" in table, label
    assert (out / "ablation.png").stat().st_size > 1000
    assert (out / "full" / "results-finetune.json").is_file()
    # Every variant changed exactly its own setting.
    import json

    from safetensors import safe_open
    with safe_open(str(out / "no-weight-drop" / "best.safetensors"), "pt") as f:
        cfg = json.loads(f.metadata()["awdlstm"])["config"]
    assert cfg["model"]["weight_drop"] == 0 and cfg["model"]["dropout_emb"] == 0.0  # tiny has no emb dropout
    # A second call finds every variant done and trains nothing.
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("results*.json")}
    (out / "no-ar-tar" / "results.json").unlink()  # as if that variant had been interrupted
    capsys.readouterr()
    assert main(args) == 0
    log = capsys.readouterr().out
    assert "ablate: no-ar-tar" in log and "ablate: no-weight-drop" not in log
    for p, t in stamps.items():
        if p.exists() and "no-ar-tar" not in str(p):
            assert p.stat().st_mtime_ns == t


def test_the_schedule_variant_removes_the_presets_own_schedule():
    from awdlstm.diagnostics.ablate import variants
    assert variants("awd-ptb", [])["no-nt-asgd"] == ["train.schedule=none"]
    budget = variants("cpu-ptb", [])
    assert budget["no-budget-schedule"] == ["train.schedule=none"] and "no-nt-asgd" not in budget
    assert "no-nt-asgd" not in variants("tiny", []) and "no-budget-schedule" not in variants("tiny", [])
