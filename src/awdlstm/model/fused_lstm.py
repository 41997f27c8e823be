"""One LSTM layer on PyTorch's fused kernel, with weight drop on W_hh.

The parameters are those of an ``nn.LSTM`` (weight_ih_l0, weight_hh_l0, bias_ih_l0,
bias_hh_l0). In training with p_w > 0 the layer calls the same fused ``nn.LSTM`` through
``torch.func.functional_call`` with the dropped W_hh substituted for one forward: no
parameter is deleted or reassigned, and no per-step Python loop runs.

Under autocast on CPU the recurrence stays in float32: oneDNN's LSTM has no bfloat16 path
on CPUs without native bf16 instructions. The embedding and decoder around it still run in
the lower precision. On CUDA, cuDNN runs the recurrence in the autocast dtype.
"""

from __future__ import annotations

import torch
from torch.func import functional_call

from .masks import Columns, no_autocast
from .recurrent import LSTMLayer

State = tuple[torch.Tensor, torch.Tensor]  # (h, c), each (1, B, H)


class FusedLSTMLayer(LSTMLayer):

    def forward(self, x: torch.Tensor, state: State, columns: Columns | None = None) -> tuple[torch.Tensor, State]:
        """x (T, B, input_size), state (h, c) each (1, B, H) -> output (T, B, H), new state.
        Weight drop's mask covers the whole matrix, so a block of columns needs nothing."""
        if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            dtype = self.lstm.weight_hh_l0.dtype
            with no_autocast(x.device):
                return self._run(x.to(dtype), (state[0].to(dtype), state[1].to(dtype)))
        return self._run(x, state)

    def _run(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        w = self.lstm.weight_hh_l0
        w_hh = self.dropped(w)
        if w_hh is not w:
            return functional_call(self.lstm, {"weight_hh_l0": w_hh}, (x, state))
        return self.lstm(x, state)

    def export_forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        return self.lstm(x, state)  # ONNX's own LSTM operator
