"""Registry of recurrent layer kinds selectable by ``model.cell``.

A layer is built as ``cls(input_size, hidden_size, weight_drop=p_w)`` and called as
``layer(x, state) -> (output, state)`` with x (T, B, input_size); ``init_state(B)``
gives its zero state.
"""

from .fused_lstm import FusedLSTMLayer

LAYERS = {
    "lstm": FusedLSTMLayer,
}
