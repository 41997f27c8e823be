import torch

from awdlstm.inference.generate import filter_logits


def test_temperature_zero_is_greedy():
    probs = filter_logits(torch.tensor([1.0, 3.0, 2.0]), 0, 0, 1.0)
    assert probs.tolist() == [0.0, 1.0, 0.0]


def test_top_k_keeps_the_k_largest():
    probs = filter_logits(torch.tensor([1.0, 4.0, 3.0, 2.0]), 1.0, 2, 1.0)
    assert probs[0] == 0 and probs[3] == 0
    torch.testing.assert_close(probs[1:3], torch.softmax(torch.tensor([4.0, 3.0]), 0))


def test_top_p_keeps_the_smallest_prefix_reaching_p():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    torch.testing.assert_close(filter_logits(logits, 1.0, 0, 0.8), torch.tensor([0.625, 0.375, 0.0, 0.0]))
    torch.testing.assert_close(filter_logits(logits, 1.0, 0, 0.81), torch.tensor([0.5, 0.3, 0.15, 0.0]) / 0.95)
    assert filter_logits(logits, 1.0, 0, 0.1).tolist() == [1.0, 0.0, 0.0, 0.0]  # the top token always stays


def test_temperature_sharpens():
    logits = torch.tensor([1.0, 2.0])
    assert filter_logits(logits, 0.5, 0, 1.0)[1] > filter_logits(logits, 1.0, 0, 1.0)[1]
