"""A WikiText-103-shaped vocabulary (267,735 types, generated) with the adaptive softmax:
it trains a few steps without the (T, B, V) distribution, and evaluation, the cache and
generation work with it."""

import numpy as np
import torch

from awdlstm import ModelConfig, batchify, build_model, load_corpus
from awdlstm.config import build_config
from awdlstm.evaluation import cache_loss, cache_target_probs, score_static
from awdlstm.inference.generate import generate
from awdlstm.runtime.evaluate import evaluate
from tests.conftest import write_corpus

TYPES = 267_735


def test_a_wikitext_103_sized_vocabulary(tmp_path):
    rng = np.random.default_rng(0)
    rare = [f"r{i}" for i in range(TYPES - 1001)]  # each once: the long tail
    common = [f"c{i}" for i in range(1000)]
    words = rare + common + list(rng.choice(common, 60_000, p=np.arange(1000, 0, -1) / 500_500))
    rng.shuffle(words)
    lines = [" ".join(words[i:i + 20]) for i in range(0, len(words), 20)]
    held_out = " ".join(rng.choice(common[:200], 400)) + "\n"  # words every training text holds
    corpus = load_corpus(str(write_corpus(tmp_path / "wt103ish", "\n".join(lines) + "\n", held_out, held_out)),
                         progress=False)
    V = len(corpus.vocab)
    assert V == TYPES  # 267,734 words and <eos>
    preset = build_config("awd-wt103").model
    cfg = ModelConfig(emb_size=32, hidden_size=48, num_layers=2, head="adaptive",
                      adaptive_cutoffs=preset.adaptive_cutoffs, dropout_emb=0.0, dropout_input=0.1,
                      dropout_hidden=0.1, dropout_output=0.1, weight_drop=0.0)
    torch.manual_seed(0)
    model = build_model(cfg, V)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    data = batchify(corpus.train[: 8 * 35 * 4], 8)[:]  # (140, 8) int64
    losses = []
    for step in range(4):
        x, y = data[step * 35: (step + 1) * 35 - 1], data[step * 35 + 1: (step + 1) * 35]
        out = model(x, model.init_hidden(8), targets=y)
        assert out.logits is None  # no (T, B, 267735) tensor in training
        loss = -out.target_logp.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    model.eval()
    assert np.isfinite(evaluate(model, corpus.valid, 2, 35))
    scored = score_static(model, corpus.valid[:200], 35)
    assert abs(cache_loss(scored.logp, cache_target_probs(scored.hidden, scored.targets, 1.0, 50), 0.0)
               - scored.loss()) < 1e-5
    tokens = list(generate(model, corpus.vocab, 5, [], seed=1))
    assert len(tokens) == 5 and all(0 <= t < V for t in tokens)
