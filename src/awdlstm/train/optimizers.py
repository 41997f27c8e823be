"""The optimizers ``train.optimizer`` names, all PyTorch's (the knobs each reads are listed,
and checked, in config.py's OPTIMIZER_KNOBS):

- ``sgd``: plain SGD, the AWD-LSTM paper's choice (NT-ASGD averages it);
- ``momentum``: SGD with heavy-ball momentum ``train.momentum`` (Nesterov's with ``train.nesterov``);
- ``adam``, with β1 = ``train.adam_beta1`` (β2 PyTorch's 0.999; β1 = 0 is RMSProp with Adam's
  bias correction, which the Mogrifier paper trains with);
- ``adagrad``: per-parameter rates from the sum of squared gradients;
- ``rmsprop``: from their running mean (decay ``train.rmsprop_alpha``; 0: PyTorch's 0.99),
  with ``train.momentum`` when set.

Every one takes ``train.weight_decay`` as its L2 penalty. A new optimizer is one line here
and its name (and knobs) in config.py; the trainer's checkpoint saves whatever state it keeps.
"""

from __future__ import annotations

import torch

RMSPROP_ALPHA = 0.99  # PyTorch's default decay, used when train.rmsprop_alpha is 0

OPTIMIZERS = {
    "sgd": lambda params, lr, t: torch.optim.SGD(params, lr=lr, weight_decay=t.weight_decay),
    "momentum": lambda params, lr, t: torch.optim.SGD(params, lr=lr, momentum=t.momentum, nesterov=t.nesterov,
                                                      weight_decay=t.weight_decay),
    "adam": lambda params, lr, t: torch.optim.Adam(params, lr=lr, betas=(t.adam_beta1, 0.999),
                                                   weight_decay=t.weight_decay),
    "adagrad": lambda params, lr, t: torch.optim.Adagrad(params, lr=lr, weight_decay=t.weight_decay),
    "rmsprop": lambda params, lr, t: torch.optim.RMSprop(params, lr=lr, alpha=t.rmsprop_alpha or RMSPROP_ALPHA,
                                                         momentum=t.momentum, weight_decay=t.weight_decay),
}


def build_optimizer(params, lr: float, t) -> torch.optim.Optimizer:
    """``t.optimizer`` over ``params`` (parameter groups) at learning rate ``lr``."""
    return OPTIMIZERS[t.optimizer](params, lr, t)
