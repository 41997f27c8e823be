import numpy as np
import torch

from awdlstm.data.batching import BPTTIterator, batchify, sample_seq_len


def test_batchify_columns_and_tail_dropped():
    src = batchify(np.arange(23), 4)
    assert src.shape == (5, 4) and src.dtype == torch.long
    # Column b holds a contiguous stretch of the stream.
    assert src[:, 1].tolist() == [5, 6, 7, 8, 9]
    assert 20 not in src


def test_batches_shift_targets_by_one_and_cover_the_source():
    src = batchify(np.arange(100), 5)  # (20, 5)
    batches = list(BPTTIterator(src, bptt=6))
    assert [b.x.shape for b in batches] == [(6, 5), (6, 5), (6, 5), (1, 5)]
    for b in batches:
        assert torch.equal(b.y, b.x + 1)  # ids are positions, so the next token is id + 1
        assert b.lr_scale == 1.0
    assert sum(b.x.size(0) for b in batches) == 19


def test_variable_bptt_distribution():
    rng = np.random.default_rng(0)
    draws = np.array([sample_seq_len(rng, 70) for _ in range(40_000)])
    long_ = draws[draws > 52]
    short = draws[draws <= 52]
    # 95% around 70, 5% around 35, sd 5, int() truncation shifts the mean by about -0.5.
    assert abs(len(short) / len(draws) - 0.05) < 0.005
    assert abs(long_.mean() - 69.5) < 0.1 and abs(short.mean() - 34.5) < 0.3
    assert abs(long_.std() - 5.0) < 0.15
    q = np.quantile(long_, [0.1, 0.5, 0.9])
    assert np.allclose(q, [63, 69, 76], atol=1)
    assert draws.min() >= 5
    # A tiny bptt hits the floor of 5.
    assert min(sample_seq_len(rng, 4) for _ in range(200)) == 5


def test_variable_iterator_lr_scale_and_determinism():
    src = batchify(np.arange(5000), 2)
    a = list(BPTTIterator(src, 70, variable=True, seed=3))
    b = list(BPTTIterator(src, 70, variable=True, seed=3))
    assert [x.start for x in a] == [x.start for x in b]
    lens = {x.x.size(0) for x in a[:-1]}
    assert len(lens) > 3
    for x in a[:-1]:
        assert x.lr_scale == x.x.size(0) / 70


def test_iterator_resumes_from_saved_position():
    src = batchify(np.arange(3000), 3)
    full = [b.start for b in BPTTIterator(src, 20, variable=True, seed=9)]
    it = BPTTIterator(src, 20, variable=True, seed=9)
    head = [next(it).start for _ in range(5)]
    state = it.state_dict()
    resumed = BPTTIterator(src, 20, variable=True, seed=123)
    resumed.load_state_dict(state)
    assert head + [b.start for b in resumed] == full
