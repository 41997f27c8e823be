"""The tiny preset learns the synthetic corpus to near its exact entropy."""

import json

from awdlstm.data import SyntheticSpec


def test_tiny_preset_within_ten_percent_of_true_entropy(tiny_run):
    run_dir, results = tiny_run
    entropy = SyntheticSpec().entropy_per_token()
    assert results["test_loss"] < 1.10 * entropy
    assert results["valid_loss"] < 1.10 * entropy
    # A model that forgot the opener could not do better than this: memory was learned.
    assert results["test_loss"] < SyntheticSpec().memoryless_entropy_per_token()
    assert json.loads((run_dir / "results.json").read_text())["test_loss"] == results["test_loss"]
