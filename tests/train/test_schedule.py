from awdlstm.train.schedule import book_lr, nonmono_triggered


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
