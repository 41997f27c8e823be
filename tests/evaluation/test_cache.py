import math

import pytest
import torch

from awdlstm.evaluation.cache import cache_loss, cache_target_probs, tune


def test_hand_computed_example():
    hidden = torch.tensor([[1.0], [2.0], [0.5]])
    targets = torch.tensor([7, 8, 7])
    p = cache_target_probs(hidden, targets, theta=1.0, window=2)
    # j=0: empty cache. j=1: one key (h0, next word 7) but the target is 8.
    # j=2: keys h0 (-> 7) and h1 (-> 8), scores 0.5 and 1.0; the target 7 gets e^0.5 / (e^0.5 + e^1).
    expected = math.exp(0.5) / (math.exp(0.5) + math.exp(1.0))
    torch.testing.assert_close(p, torch.tensor([0.0, 0.0, expected]))
    # A window of 1 leaves only h1 (-> 8) for j=2.
    assert cache_target_probs(hidden, targets, 1.0, window=1).tolist() == [0.0, 0.0, 0.0]
    # theta scales the scores.
    p2 = cache_target_probs(hidden, targets, theta=2.0, window=2)
    assert p2[2].item() == pytest.approx(math.exp(1.0) / (math.exp(1.0) + math.exp(2.0)))


def test_chunking_does_not_change_the_result():
    torch.manual_seed(0)
    hidden, targets = torch.randn(300, 8), torch.randint(0, 20, (300,))
    a = cache_target_probs(hidden, targets, 0.7, window=50, chunk=512)
    b = cache_target_probs(hidden, targets, 0.7, window=50, chunk=13)
    torch.testing.assert_close(a, b)


def test_lambda_zero_is_the_model_itself_and_interpolation_is_exact():
    logp = torch.log(torch.tensor([0.5, 0.2, 0.1]))
    pc = torch.tensor([0.0, 0.6, 0.3])
    assert cache_loss(logp, pc, 0.0) == pytest.approx(-logp.mean().item())
    expected = -(math.log(0.5) + math.log(0.9 * 0.2 + 0.1 * 0.6) + math.log(0.9 * 0.1 + 0.1 * 0.3)) / 3
    assert cache_loss(logp, pc, 0.1) == pytest.approx(expected)


def test_tune_finds_the_best_setting():
    torch.manual_seed(1)
    # A sequence that repeats: the cache should help and tune should pick lambda > 0.
    hidden = torch.randn(20, 4).repeat(10, 1)
    targets = torch.randint(0, 50, (20,)).repeat(10)
    logp = torch.full((200,), math.log(1 / 50))
    best = tune(hidden, targets, logp, [0.5, 2.0], [0.0, 0.5, 0.9], [30])[0]
    assert best[3] == 0.9 and best[0] < -math.log(1 / 50)
