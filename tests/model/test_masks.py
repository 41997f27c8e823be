"""Masks over a block of the batch's columns are the full batch's masks cut to the block,
so data-parallel processes compute exactly what one process computes."""

import pytest
import torch

from awdlstm import ModelConfig, build_model
from awdlstm.model import LockedDropout
from awdlstm.model.masks import Columns

CELLS = {
    "lstm": {},
    "zoneout": {"zoneout_c": 0.3, "zoneout_h": 0.2},
    "recurrent-dropout": {"recurrent_dropout": 0.25},
    "output-zoneout": {"output_zoneout": 0.2},
    "cell-dropout": {"cell_dropout": 0.2},
    "variational": {"variational_x": 0.2, "variational_h": 0.3},
}


def awd_config(cell="lstm", **extra):
    return ModelConfig(emb_size=12, hidden_size=20, num_layers=2, cell=cell, dropout_emb=0.2, dropout_input=0.3,
                       dropout_hidden=0.25, dropout_output=0.3, weight_drop=0.4, **{**CELLS[cell], **extra})


@pytest.mark.parametrize("locked", [True, False])
def test_locked_dropout_block_is_the_full_mask_sliced(locked):
    drop = LockedDropout(0.4, locked).train()
    x = torch.ones(7, 6, 5)
    torch.manual_seed(3)
    full = drop(x)
    for start, end in ((0, 2), (2, 6), (3, 4)):
        torch.manual_seed(3)
        block = drop(x[:, start:end], Columns(start, 6))
        assert torch.equal(block, full[:, start:end])


@pytest.mark.parametrize("cell", list(CELLS))
def test_model_on_blocks_equals_model_on_the_whole_batch(cell, impl):
    """Training mode with every regularizer: two column blocks, each with the generator in
    the same state (as two processes have), give the whole batch's outputs and gradients."""
    torch.manual_seed(0)
    model = build_model(awd_config(cell), 30).train()
    tokens = torch.randint(0, 30, (9, 6))
    hidden = model.init_hidden(6)

    def run(cols, columns):
        model.zero_grad()
        torch.manual_seed(11)
        h = [tuple(t[:, cols] for t in s) for s in hidden]
        out = model(tokens[:, cols], h, columns)
        out.logits.sum().backward()
        return out.logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}

    full, g_full = run(slice(0, 6), None)
    left, g_left = run(slice(0, 4), Columns(0, 6))
    right, g_right = run(slice(4, 6), Columns(4, 6))
    torch.testing.assert_close(torch.cat([left, right], 1), full, atol=1e-5, rtol=1e-5)
    for name in g_full:  # gradients of a sum add up over the blocks
        torch.testing.assert_close(g_left[name] + g_right[name], g_full[name], atol=1e-4, rtol=1e-4)
