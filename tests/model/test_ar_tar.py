import torch

from awdlstm.model.ar_tar import ar_penalty, tar_penalty


def test_ar_hand_computed():
    x = torch.tensor([[[1.0, -2.0]], [[3.0, 0.0]]])  # (T=2, B=1, E=2)
    # mean of squares = (1 + 4 + 9 + 0) / 4 = 3.5
    assert ar_penalty(x, 2.0).item() == 7.0


def test_tar_hand_computed():
    x = torch.tensor([[[1.0, 2.0]], [[2.0, 0.0]], [[4.0, 0.0]]])  # (T=3, B=1, E=2)
    # differences: (1, -2), (2, 0) -> squares 1, 4, 4, 0 -> mean 2.25
    assert tar_penalty(x, 1.0).item() == 2.25
    assert tar_penalty(x[:1], 1.0).item() == 0.0


def test_gradients():
    x = torch.tensor([[[1.0]], [[3.0]]], requires_grad=True)
    (ar_penalty(x, 1.0) + tar_penalty(x, 1.0)).backward()
    # AR: d/dx mean(x^2) = x; TAR: d/dx (x1 - x0)^2 = (-4, 4)
    assert x.grad.view(-1).tolist() == [1.0 - 4.0, 3.0 + 4.0]
