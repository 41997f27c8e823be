import shutil
import subprocess

import pytest

from awdlstm.cli import main
from awdlstm.diagnostics.report import render_report


def test_report_holds_config_curves_timings_and_metrics(tiny_run):
    run_dir, results = tiny_run
    page = render_report(run_dir)
    assert page.startswith("<!doctype html>") and "</html>" in page
    assert "data:image/png;base64," in page  # the curve is embedded: one self-contained file
    assert f"{results['test_ppl']:.3f}" in page
    assert "[model]" in page and "emb_size" in page and "tokens/s" in page
    assert "http://" not in page and "https://" not in page


def test_report_command_writes_the_file(tiny_run, tmp_path, capsys):
    run_dir, _ = tiny_run
    assert main(["report", str(run_dir), "--out", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").read_text().count("<table>") >= 3


def test_report_of_a_folder_without_a_run(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.mark.skipif(chromium() is None, reason="headless Chromium is not installed")
def test_report_renders_in_headless_chromium(tiny_run, tmp_path):
    run_dir, results = tiny_run
    page = tmp_path / "r.html"
    page.write_text(render_report(run_dir))
    proc = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-500:]
    dom = proc.stdout
    assert f"Run {run_dir.name}" in dom and "Learning curves" in dom and "Configuration" in dom
    assert f"{results['test_ppl']:.3f}" in dom
    assert "<img" in dom and "data:image/png" in dom
