"""Registry of recurrent layer kinds, selectable per layer by ``model.cell`` / ``model.layer_cells``.

An entry builds a layer (a ``RecurrentLayer``, recurrent.py: the call, the initial state,
weight drop and the export path) from (input_size, hidden_size, ModelConfig). A new cell is
one file with its layer class plus its line here (and, when it reads config knobs, their
line in KNOBS).
"""

from .batchnorm_lstm import BatchNormLSTMLayer
from .fused_lstm import FusedLSTMLayer
from .gru import GRULayer
from .layernorm_lstm import LayerNormLSTMLayer
from .mogrifier import MogrifierLayer
from .rnn import RNNLayer
from .step_lstm import StepLSTMLayer

LAYERS = {
    "lstm": lambda i, o, c: FusedLSTMLayer(i, o, c.weight_drop),
    "zoneout": lambda i, o, c: StepLSTMLayer(i, o, c.weight_drop, zoneout_c=c.zoneout_c, zoneout_h=c.zoneout_h),
    "recurrent-dropout": lambda i, o, c: StepLSTMLayer(i, o, c.weight_drop, recurrent_dropout=c.recurrent_dropout),
    "output-zoneout": lambda i, o, c: StepLSTMLayer(i, o, c.weight_drop, output_zoneout=c.output_zoneout),
    "cell-dropout": lambda i, o, c: StepLSTMLayer(i, o, c.weight_drop, cell_dropout=c.cell_dropout),
    "variational": lambda i, o, c: StepLSTMLayer(i, o, c.weight_drop, variational_x=c.variational_x,
                                                 variational_h=c.variational_h),
    "mogrifier": lambda i, o, c: MogrifierLayer(i, o, c.weight_drop, c.mogrifier_rounds, c.mogrifier_rank),
    "gru": lambda i, o, c: GRULayer(i, o, c.weight_drop, zoneout_h=c.zoneout_h, recurrent_dropout=c.recurrent_dropout),
    "rnn": lambda i, o, c: RNNLayer(i, o, c.weight_drop, zoneout_h=c.zoneout_h),
    "layernorm-lstm": lambda i, o, c: LayerNormLSTMLayer(i, o, c.weight_drop, c.zoneout_c, c.zoneout_h),
    "batchnorm-lstm": lambda i, o, c: BatchNormLSTMLayer(i, o, c.weight_drop, c.zoneout_c, c.zoneout_h,
                                                         c.batchnorm_steps or BATCHNORM_STEPS),
}
BATCHNORM_STEPS = 100  # model.batchnorm_steps = 0: statistics for the first 100 steps of a window

# The config knobs each kind reads. A knob set above 0 when no layer is of a kind that reads
# it is a config error (ModelConfig.validate), never silently ignored.
KNOBS = {
    "zoneout": ("zoneout_c", "zoneout_h"),
    "recurrent-dropout": ("recurrent_dropout",),
    "output-zoneout": ("output_zoneout",),
    "cell-dropout": ("cell_dropout",),
    "variational": ("variational_x", "variational_h"),
    "mogrifier": ("mogrifier_rounds", "mogrifier_rank"),
    "gru": ("zoneout_h", "recurrent_dropout"),
    "rnn": ("zoneout_h",),
    "layernorm-lstm": ("zoneout_c", "zoneout_h"),
    "batchnorm-lstm": ("zoneout_c", "zoneout_h", "batchnorm_steps"),
}
