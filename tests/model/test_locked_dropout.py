import torch

from awdlstm.model.locked_dropout import LockedDropout


def test_one_mask_shared_over_time():
    torch.manual_seed(0)
    x = torch.ones(30, 4, 16)
    out = LockedDropout(0.4).train()(x)
    zeros = out == 0  # (T, B, H)
    assert torch.equal(zeros, zeros[:1].expand_as(zeros))  # the same units at every step
    assert zeros[0].any() and not zeros[0].all()
    assert torch.allclose(out[~zeros], torch.tensor(1 / 0.6))


def test_masks_differ_between_forwards_and_sequences():
    torch.manual_seed(1)
    drop = LockedDropout(0.5).train()
    x = torch.ones(3, 8, 64)
    a, b = drop(x), drop(x)
    assert not torch.equal(a, b)
    assert not torch.equal(a[0, 0], a[0, 1])  # one mask per sequence of the batch


def test_rate_and_eval():
    torch.manual_seed(2)
    drop = LockedDropout(0.25)
    x = torch.ones(2, 100, 1000)
    assert abs((drop.train()(x)[0] == 0).float().mean().item() - 0.25) < 0.01
    assert torch.equal(drop.eval()(x), x)


def test_unlocked_mode_draws_per_step():
    torch.manual_seed(3)
    out = LockedDropout(0.5, locked=False).train()(torch.ones(10, 2, 32))
    assert not torch.equal(out[0], out[1])
