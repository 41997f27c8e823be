import pytest

from awdlstm.train.schedules.book import book_lr
from awdlstm.train.schedules.ntasgd import nonmono_triggered


def test_nonmono_needs_more_than_n_epochs_of_history():
    assert not nonmono_triggered([5, 4, 3, 2, 1], 10.0, 5)  # len(history) == n: never
    assert nonmono_triggered([5, 4, 3, 2, 1, 1], 5.5, 5)  # worse than min(history[:-5]) = 5


def test_nonmono_compares_with_the_best_before_the_last_n():
    history = [3.0, 2.0, 2.5, 2.6, 2.7, 2.8, 2.9]  # min(history[:-5]) = min(3.0, 2.0) = 2.0
    assert not nonmono_triggered(history, 1.99, 5)
    assert not nonmono_triggered(history, 2.0, 5)  # equal is not worse
    assert nonmono_triggered(history, 2.01, 5)


def test_book_lr_divides_only_without_improvement():
    assert book_lr(20.0, 4.0, 5.0, 4.0) == 20.0
    assert book_lr(20.0, 5.0, 5.0, 4.0) == 5.0


def test_budget_lr_warms_up_then_reaches_its_floor_exactly_at_the_end():
    from awdlstm.train.schedules.budget import budget_lr
    lr, warm, floor = 30.0, 0.1, 0.05
    assert budget_lr(lr, 0.0, warm, floor, "cosine") == pytest.approx(lr * floor)  # the warm-up starts at the floor
    assert budget_lr(lr, 0.05, warm, floor, "cosine") == pytest.approx(lr * (floor + (1 - floor) * 0.5))
    assert budget_lr(lr, warm, warm, floor, "cosine") == pytest.approx(lr)  # the peak
    assert budget_lr(lr, 0.55, warm, floor, "cosine") == pytest.approx(lr * (floor + (1 - floor) * 0.5))
    assert budget_lr(lr, 0.55, warm, floor, "linear") == pytest.approx(lr * (floor + (1 - floor) * 0.5))
    assert budget_lr(lr, 0.775, warm, floor, "linear") == pytest.approx(lr * (floor + (1 - floor) * 0.25))
    for shape in ("cosine", "linear"):
        assert budget_lr(lr, 1.0, warm, floor, shape) == pytest.approx(lr * floor)
        assert budget_lr(lr, 1.7, warm, floor, shape) == pytest.approx(lr * floor)  # past the budget: the floor
        values = [budget_lr(lr, p / 1000, warm, 0.0, shape) for p in range(-50, 1200)]
        assert min(values) >= 0.0  # never negative, not even with a floor of 0
        after = values[50 + 100:]  # p >= warmup: never increases
        assert all(b <= a + 1e-12 for a, b in zip(after, after[1:]))
    assert budget_lr(lr, 1.0, 0.0, 0.0, "cosine") == 0.0


def test_budget_lr_holds_its_peak_until_the_decay_starts():
    from awdlstm.train.schedules.budget import budget_lr
    lr = 30.0
    for p in (0.1, 0.3, 0.6):
        assert budget_lr(lr, p, 0.1, 0.0, "linear", decay_start=0.6) == pytest.approx(lr)
    assert budget_lr(lr, 0.8, 0.1, 0.0, "linear", decay_start=0.6) == pytest.approx(lr / 2)
    assert budget_lr(lr, 0.8, 0.1, 0.0, "cosine", decay_start=0.6) == pytest.approx(lr / 2)
    assert budget_lr(lr, 1.0, 0.1, 0.1, "cosine", decay_start=0.6) == pytest.approx(lr * 0.1)
    # A decay start inside the warm-up means no stable phase.
    assert budget_lr(lr, 0.55, 0.1, 0.0, "linear", decay_start=0.05) == pytest.approx(lr / 2)
