import math

import numpy as np

from awdlstm.data import load_corpus
from awdlstm.data.synthetic import SyntheticSpec, write_synthetic


def true_log_prob(spec: SyntheticSpec, lines: list[str]) -> tuple[float, int]:
    """Log-probability of lines under the generating process, scored token by token."""
    total, n = 0.0, 0
    q, F, K = spec.stop, spec.fillers, spec.openers
    for line in lines:
        words = line.split()
        total += math.log(1 / K)  # opener
        for w in words[1:]:
            total += math.log(q) if w.startswith("z") else math.log((1 - q) / F)
        assert words[-1] == "z" + words[0][1:]  # the closer matches its opener
        n += len(words) + 1  # + <eos>, which is certain
    return total, n


def test_deterministic_by_seed(tmp_path):
    write_synthetic(SyntheticSpec(seed=4, train_lines=50, eval_lines=10), tmp_path / "a")
    write_synthetic(SyntheticSpec(seed=4, train_lines=50, eval_lines=10), tmp_path / "b")
    write_synthetic(SyntheticSpec(seed=5, train_lines=50, eval_lines=10), tmp_path / "c")
    a, b, c = ((tmp_path / x / "train.txt").read_text() for x in "abc")
    assert a == b != c


def test_entropy_formula_matches_the_empirical_rate(tmp_path):
    spec = SyntheticSpec(train_lines=20_000, eval_lines=10, seed=1)
    write_synthetic(spec, tmp_path)
    lines = (tmp_path / "train.txt").read_text().splitlines()
    logp, n = true_log_prob(spec, lines)
    assert abs(-logp / n - spec.entropy_per_token()) < 0.01 * spec.entropy_per_token()
    assert spec.memoryless_entropy_per_token() > 1.1 * spec.entropy_per_token()


def test_loads_as_a_corpus():
    c = load_corpus("synthetic")
    assert len(c.vocab) == SyntheticSpec().openers * 2 + SyntheticSpec().fillers + 1
    assert c.stats["train"].lines == SyntheticSpec().train_lines
    assert np.all(c.valid >= 0)
