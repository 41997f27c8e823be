"""The [model] section: sizes, cell, tying, head and every regularizer.

The cell and head names are checked against the registries of this package (layers.py,
heads.py), so a config names only what can be built.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import AwdlstmError
from ..settings import Validated, param
from .heads import HEADS
from .layers import KNOBS, LAYERS


@dataclass
class ModelConfig(Validated):
    """The language model: sizes, cell, tying and every regularizer."""

    SECTION = "model"
    emb_size: int = param(400, "embedding size E; the last layer's output size when tied", "positive")
    hidden_size: int = param(1150, "hidden size H of every LSTM layer but the last (when tied)", "positive")
    num_layers: int = param(3, "number L of stacked single-layer LSTMs", "positive")
    tie_weights: bool = param(True, "share the decoder weight with the embedding (reduced embedding)")
    cell: str = param("lstm", "recurrent layer kind, a name in awdlstm.model.layers.LAYERS")
    dropout_emb: float = param(0.1, "p_e: embedding dropout, whole vocabulary rows per forward", "prob")
    dropout_input: float = param(0.4, "p_i: locked dropout on the embedding output", "prob")
    dropout_hidden: float = param(0.25, "p_h: locked dropout between LSTM layers", "prob")
    dropout_output: float = param(0.4, "p_o: locked dropout on the last LSTM output", "prob")
    weight_drop: float = param(0.5, "p_w: DropConnect on every layer's hidden-to-hidden matrix", "prob")
    locked_dropout: bool = param(True, "share dropout masks over time (False: fresh mask per step, Zaremba)")
    layer_cells: list[str] = param([], "a cell kind per layer, overriding `cell` (empty: `cell` everywhere)")
    zoneout_c: float = param(0.0, "zoneout probability on the cell state (cells 'zoneout', 'layernorm-lstm', "
                             "'batchnorm-lstm')", "prob")
    zoneout_h: float = param(0.0, "zoneout probability on the hidden state (cells 'zoneout', 'gru', 'rnn', "
                             "'layernorm-lstm', 'batchnorm-lstm')", "prob")
    recurrent_dropout: float = param(0.0, "Semeniuta dropout of the cell update (cell 'recurrent-dropout'), or of "
                                     "the GRU's candidate (cell 'gru')", "prob")
    batchnorm_steps: int = param(0, "cell 'batchnorm-lstm': time steps with statistics of their own; later steps "
                                 "use the last one's (0: 100)", "nonneg")
    cell_dropout: float = param(0.0, "dropout of the new cell state (cell 'cell-dropout')", "prob")
    output_zoneout: float = param(0.0, "zoneout of the output gate, the paper's variant (cell 'output-zoneout')", "prob")
    variational_x: float = param(0.0, "Gal dropout on each layer's input, one mask per sequence (cell 'variational')", "prob")
    variational_h: float = param(0.0, "Gal dropout on h_{t-1} in the gates, one mask per sequence (cell 'variational')", "prob")
    mogrifier_rounds: int = param(0, "cell 'mogrifier': rounds r of mutual gating of x and h (paper: 5; "
                                  "0: a plain LSTM)", "nonneg")
    mogrifier_rank: int = param(0, "cell 'mogrifier': rank k of each Q/R matrix as a product (0: full matrices)",
                                "nonneg")
    init_range: float = param(0.1, "embedding weights start uniform in [-init_range, init_range]", "positive")
    head: str = param("softmax", "output layer, a name in awdlstm.model.heads.HEADS: 'softmax' (full), 'adaptive' "
                      "(adaptive softmax over frequency-sorted clusters) or 'mos' (mixture of softmaxes)")
    adaptive_cutoffs: list[int] = param([], "head 'adaptive': ascending word ids where the tail clusters start "
                                        "(the first is the head's shortlist size), e.g. [2000, 6000]", "positive")
    mos_experts: int = param(0, "head 'mos': number K of softmaxes mixed (paper: 15)", "nonneg")
    mos_last_size: int = param(0, "head 'mos': output size of the last layer, the latent's input (paper: 620); "
                               "0: emb_size", "nonneg")
    dropout_latent: float = param(0.0, "head 'mos': locked dropout p_l on the K latent vectors (paper: 0.29)", "prob")

    def validate(self) -> None:
        for key, cells in (("cell", [self.cell]), ("layer_cells", self.layer_cells)):
            for cell in cells:
                if cell not in LAYERS:
                    raise AwdlstmError(f"model.{key}={cell!r} is not valid; choose from: {', '.join(LAYERS)}")
        used = self.layer_cells or [self.cell]
        for knob in dict.fromkeys(k for knobs in KNOBS.values() for k in knobs):
            if getattr(self, knob) > 0 and not any(knob in KNOBS.get(c, ()) for c in used):
                kinds = " or ".join(repr(k) for k, knobs in KNOBS.items() if knob in knobs)
                now = f"model.layer_cells={used}" if self.layer_cells else f"model.cell={self.cell!r}"
                raise AwdlstmError(f"model.{knob}={getattr(self, knob)} only acts with model.cell={kinds} "
                                   f"(or a layer of such a kind in model.layer_cells); now {now}")
        if self.head not in HEADS:
            raise AwdlstmError(f"model.head={self.head!r} is not valid; choose one of: {', '.join(HEADS)}")
        for name, head in HEADS.items():
            for knob in head.KNOBS:
                if name != self.head and getattr(self, knob):
                    raise AwdlstmError(f"model.{knob}={getattr(self, knob)} only acts with model.head={name!r} "
                                       f"(now {self.head!r})")
        HEADS[self.head].check(self)
        if self.layer_cells and len(self.layer_cells) != self.num_layers:
            raise AwdlstmError(f"model.layer_cells has {len(self.layer_cells)} entries; it needs one per layer "
                               f"(num_layers={self.num_layers}) or none")
