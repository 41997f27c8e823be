"""The base class of every recurrent layer kind (the registry is layers.py).

A layer is called as ``layer(x, state, columns=None) -> (output, state)``:

    x       (T, B, input_size) in the autocast dtype or the weights'
    state   a tuple of tensors each (1, B, hidden_size): (h, c) for the LSTM family
    columns None, or the block of a larger batch that these B columns are (model/masks.py):
            a layer that draws masks varying over the batch draws them for the whole batch
            and cuts them to the block; a layer that draws none ignores it
    output  (T, B, hidden_size)

``init_state(B)`` is the zero state; ``dropped(w)`` applies weight drop (DropConnect) to a
hidden-to-hidden matrix in training; ``export_forward`` is the evaluation forward in
operations the ONNX exporter traces (``exportable`` False where there is none yet);
``as_lstm()`` is the layer's parameters as an ``nn.LSTM`` where it has them (the LSTM
family), for diagnostics that read an LSTM's weights.
"""

from __future__ import annotations

import torch
from torch import nn

from .weight_drop import drop_weight

State = tuple[torch.Tensor, ...]


class RecurrentLayer(nn.Module):
    exportable = True

    def __init__(self, input_size: int, hidden_size: int, weight_drop: float = 0.0):
        super().__init__()
        self.input_size, self.hidden_size, self.weight_drop = input_size, hidden_size, weight_drop

    def forward(self, x: torch.Tensor, state: State, columns=None) -> tuple[torch.Tensor, State]:
        raise NotImplementedError

    state_size = 2  # tensors in the state: (h, c)

    def init_state(self, batch_size: int) -> State:
        """Zeros, each (1, batch_size, H), on the weights' device and in their dtype."""
        zeros = next(self.parameters()).new_zeros(1, batch_size, self.hidden_size)
        return tuple([zeros] + [zeros.clone() for _ in range(self.state_size - 1)])

    def dropped(self, w: torch.Tensor) -> torch.Tensor:
        """``w`` with weight drop's mask (one per forward) in training, else ``w`` itself."""
        return drop_weight(w, self.weight_drop) if self.training and self.weight_drop > 0 else w

    def export_forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        raise NotImplementedError(f"{type(self).__name__} has no exportable forward")

    def as_lstm(self) -> nn.LSTM | None:
        return None


class LSTMLayer(RecurrentLayer):
    """The LSTM family: the parameters of one ``nn.LSTM`` (weight_ih_l0, weight_hh_l0,
    bias_ih_l0, bias_hh_l0 under ``lstm.``), so weights move between its kinds."""

    def __init__(self, input_size: int, hidden_size: int, weight_drop: float = 0.0):
        super().__init__(input_size, hidden_size, weight_drop)
        self.lstm = nn.LSTM(input_size, hidden_size)

    def as_lstm(self) -> nn.LSTM:
        return self.lstm
