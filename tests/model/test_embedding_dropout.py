import torch
from torch import nn

from awdlstm.model.embedding_dropout import EmbeddingDropout


def test_whole_rows_dropped_with_one_mask_per_forward():
    torch.manual_seed(0)
    emb = nn.Embedding(50, 8)
    drop = EmbeddingDropout(0.5).train()
    tokens = torch.arange(50).repeat(12).view(12, 50)
    out = drop(emb, tokens)  # (12, 50, 8): every word appears once in each of the 12 rows
    ref = emb(tokens)
    for w in range(50):
        positions = out[tokens == w]  # (12, 8): word w everywhere in the batch
        if positions.abs().sum() == 0:
            continue  # dropped everywhere
        # kept everywhere, scaled by 1 / (1 - p)
        torch.testing.assert_close(positions, ref[tokens == w] * 2.0)
    dropped = sum(int(out[tokens == w].abs().sum() == 0) for w in range(50))
    assert 10 <= dropped <= 40


def test_drop_rate_and_scale():
    torch.manual_seed(1)
    mask = EmbeddingDropout(0.1).row_mask(100_000)
    assert abs((mask == 0).float().mean().item() - 0.1) < 0.005
    assert torch.allclose(mask[mask > 0], torch.tensor(1 / 0.9))


def test_eval_is_identity_and_gradients_skip_dropped_rows():
    torch.manual_seed(2)
    emb = nn.Embedding(20, 4)
    drop = EmbeddingDropout(0.5)
    tokens = torch.arange(20).view(4, 5)
    drop.eval()
    assert torch.equal(drop(emb, tokens), emb(tokens))
    drop.train()
    torch.manual_seed(3)
    out = drop(emb, tokens)
    out.sum().backward()
    torch.manual_seed(3)
    mask = drop.row_mask(20)
    torch.testing.assert_close(emb.weight.grad, mask.unsqueeze(1).expand(20, 4))


def test_same_as_masking_the_weight_matrix():
    torch.manual_seed(4)
    emb = nn.Embedding(30, 6)
    drop = EmbeddingDropout(0.3).train()
    tokens = torch.randint(0, 30, (7, 3))
    torch.manual_seed(5)
    fast = drop(emb, tokens)
    torch.manual_seed(5)
    mask = drop.row_mask(30)
    slow = nn.functional.embedding(tokens, emb.weight * mask.unsqueeze(1))
    torch.testing.assert_close(fast, slow)
