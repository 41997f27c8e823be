"""The adaptive softmax head: a proper distribution over the whole vocabulary, the
training loss is the cross-entropy of that distribution, and the tied matrix is the
embedding's own storage."""

import pytest
import torch
import torch.nn.functional as F

from awdlstm import ModelConfig, build_model
from awdlstm.errors import AwdlstmError
from awdlstm.model.adaptive_softmax import AdaptiveSoftmax, factor_log_probs

V = 50
ADAPTIVE = dict(emb_size=8, hidden_size=12, num_layers=2, head="adaptive", adaptive_cutoffs=[10, 25])


def trained_looking(module: AdaptiveSoftmax) -> AdaptiveSoftmax:
    """Non-zero cluster rows and biases, so every term of the distribution matters."""
    with torch.no_grad():
        for p in (module.bias, module.cluster_weight, module.cluster_bias):
            p.normal_(0, 0.5)
    return module


def test_probabilities_over_the_whole_vocabulary_sum_to_one():
    torch.manual_seed(0)
    head = trained_looking(AdaptiveSoftmax(8, V, [10, 25]))
    logp = head.log_probs(torch.randn(3, 4, 8) * 3)
    assert logp.shape == (3, 4, V) and logp.dtype == torch.float32
    torch.testing.assert_close(logp.exp().sum(-1), torch.ones(3, 4), atol=1e-5, rtol=0)
    # A word of cluster i: p(cluster i) from the head times p(word | cluster i).
    x = torch.randn(1, 8)
    head_logits = torch.cat([x @ head.weight[:10].T + head.bias[:10], x @ head.cluster_weight.T + head.cluster_bias], 1)
    tail = x @ head.weight[25:].T + head.bias[25:]  # cluster 1 = ids 25..49
    expected = F.log_softmax(head_logits, 1)[0, 11] + F.log_softmax(tail, 1)[0, 30 - 25]
    torch.testing.assert_close(head.log_probs(x)[0, 30], expected, atol=1e-5, rtol=0)


def test_target_log_prob_is_the_full_distribution_at_the_target():
    torch.manual_seed(1)
    head = trained_looking(AdaptiveSoftmax(8, V, [10, 25]))
    x, y = torch.randn(7, 5, 8), torch.randint(0, V, (7, 5))
    y[0] = torch.tensor([0, 9, 10, 24, 49])  # both edges of every cluster
    full = head.log_probs(x)
    torch.testing.assert_close(head.target_log_prob(x, y), full.gather(-1, y.unsqueeze(-1)).squeeze(-1),
                               atol=1e-5, rtol=0)


def test_model_loss_equals_cross_entropy_of_its_probabilities():
    torch.manual_seed(2)
    model = build_model(ModelConfig(**ADAPTIVE), V).eval()
    trained_looking(model.decoder)
    tokens, targets = torch.randint(0, V, (6, 3)), torch.randint(0, V, (6, 3))
    hidden = model.init_hidden(3)
    probs = model(tokens, hidden).logits.exp()  # without targets: log-probabilities (6, 3, V)
    torch.testing.assert_close(probs.sum(-1), torch.ones(6, 3), atol=1e-5, rtol=0)
    out = model(tokens, hidden, targets=targets)
    assert out.logits is None  # the training path never builds the (T, B, V) distribution
    ce = F.nll_loss(probs.log().view(-1, V), targets.view(-1))
    torch.testing.assert_close(-out.target_logp.mean(), ce, atol=1e-5, rtol=0)


def test_factors_are_the_pieces_of_the_full_distribution():
    """factor(): the head's log-probabilities, each cluster's rows (those whose target lies
    in it) with their within-cluster log-probabilities, and log p(target); a forward with
    factors keeps them and still never builds (T, B, V)."""
    torch.manual_seed(4)
    model = build_model(ModelConfig(**ADAPTIVE), V).eval()
    head = trained_looking(model.decoder)
    tokens, y = torch.randint(0, V, (6, 3)), torch.randint(0, V, (6, 3))
    y[0] = torch.tensor([0, 10, 49])
    out = model(tokens, model.init_hidden(3), targets=y, factors=True)
    assert out.logits is None
    f, full = out.factors, head.log_probs(out.dropped_output).reshape(-1, V)  # (18, V)
    flat = y.reshape(-1)
    torch.testing.assert_close(f.target_logp, full.gather(1, flat.unsqueeze(1)).view(6, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(f.head[:, :10], full[:, :10], atol=1e-5, rtol=0)
    for i, (lo, hi) in enumerate(((10, 25), (25, V))):
        rows, within = f.clusters[i]
        assert torch.equal(rows, ((flat >= lo) & (flat < hi)).nonzero().squeeze(1))
        # log p(cluster i) from the head, plus log p(w | cluster i), is the full log p(w).
        torch.testing.assert_close(f.head[rows, 10 + i:11 + i] + within, full[rows, lo:hi], atol=1e-5, rtol=0)
    torch.testing.assert_close(out.target_logp, model(tokens, model.init_hidden(3), targets=y).target_logp)


def test_any_distribution_cut_at_the_cutoffs_gives_the_heads_own_factors():
    """factor_log_probs cuts a whole (N, V) distribution into the pieces factor() computes
    (so a teacher with another head gives a student the same kind of targets)."""
    torch.manual_seed(6)
    head = trained_looking(AdaptiveSoftmax(8, V, [10, 25]))
    x, y = torch.randn(20, 8), torch.randint(0, V, (20,))
    y[:3] = torch.tensor([9, 10, 49])
    own, cut = head.factor(x, y), factor_log_probs(head.log_probs(x), y, [10, 25])
    torch.testing.assert_close(cut.head, own.head, atol=1e-5, rtol=0)
    torch.testing.assert_close(cut.target_logp, own.target_logp, atol=1e-5, rtol=0)
    for (rows_a, within_a), (rows_b, within_b) in zip(cut.clusters, own.clusters):
        assert torch.equal(rows_a, rows_b)
        torch.testing.assert_close(within_a, within_b, atol=1e-5, rtol=0)


def test_log_probs_normalizes_only_the_full_softmaxs_logits():
    torch.manual_seed(5)
    tokens = torch.randint(0, V, (4, 2))
    for head in ("adaptive", "softmax"):
        cfg = ModelConfig(**ADAPTIVE) if head == "adaptive" else ModelConfig(emb_size=8, hidden_size=12, num_layers=2)
        model = build_model(cfg, V).eval()
        scores = model(tokens, model.init_hidden(2)).logits
        torch.testing.assert_close(model.log_probs(scores), F.log_softmax(scores, -1), atol=1e-5, rtol=0)
        assert (model.log_probs(scores) is scores) == (head == "adaptive")  # already log-probabilities


def test_tied_head_shares_the_embedding_storage_and_trains_it():
    torch.manual_seed(3)
    model = build_model(ModelConfig(**ADAPTIVE), V)
    assert model.decoder.weight is model.embedding.weight
    assert model.decoder.weight.data_ptr() == model.embedding.weight.data_ptr()
    assert sum(p is model.embedding.weight for p in model.parameters()) == 1
    tokens = torch.randint(0, V, (5, 2))
    targets = torch.tensor([[1, 12]] * 4 + [[30, 49]])  # the head and both clusters
    out = model(tokens, model.init_hidden(2), targets=targets)
    (-out.target_logp.mean()).backward()
    for name in ("cluster_weight", "cluster_bias", "bias"):
        assert getattr(model.decoder, name).grad.abs().sum() > 0, name
    # Rows 30 and 49 are targets (not inputs): their gradient comes through the head.
    grad = model.embedding.weight.grad
    assert grad[30].abs().sum() > 0 and grad[49].abs().sum() > 0
    untied = build_model(ModelConfig(**ADAPTIVE, tie_weights=False), V)
    assert untied.decoder.weight is not untied.embedding.weight


def test_adaptive_config_errors_name_the_key():
    with pytest.raises(AwdlstmError, match="adaptive_cutoffs"):
        ModelConfig(head="adaptive")
    with pytest.raises(AwdlstmError, match="only acts with model.head='adaptive'"):
        ModelConfig(adaptive_cutoffs=[10])
    with pytest.raises(AwdlstmError, match="strictly ascending"):
        ModelConfig(head="adaptive", adaptive_cutoffs=[20, 10])
    with pytest.raises(AwdlstmError, match="below the vocabulary size 50"):
        build_model(ModelConfig(**{**ADAPTIVE, "adaptive_cutoffs": [10, 50]}), V)
