"""The Python API: the step function, top-k, and batched scoring agree with the model read
one token at a time."""

import math

import pytest
import torch

import awdlstm
from awdlstm.errors import AwdlstmError
from tests.conftest import make_model_folder


@torch.no_grad()
def score_ids(model, vocab, ids):
    """The reference: log p of ``ids`` then <eos>, after <eos>, one token at a time (batch 1)."""
    hidden, total = model.init_hidden(1), 0.0
    seq = [vocab.eos_id] + list(ids) + [vocab.eos_id]
    for x, y in zip(seq[:-1], seq[1:]):
        out = model(torch.tensor([[x]]), hidden)
        hidden = out.hidden
        total += float(torch.log_softmax(out.logits[0, 0].float(), -1)[y])
    return total


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    return awdlstm.load(make_model_folder(tmp_path_factory.mktemp("m") / "m"))


def test_steps_equal_one_forward(lm):
    text = "the company said it would buy shares"
    state = lm.initial_state()
    logps = []
    log_probs, state = lm.step(state, "<eos>")
    for word in text.split() + ["<eos>"]:
        logps.append(float(log_probs[lm.vocab.stoi[word]]))
        log_probs, state = lm.step(state, word)
    assert torch.allclose(torch.tensor(logps), torch.tensor(lm.score([text])[0].logp), atol=1e-5)
    assert abs(sum(logps) - score_ids(lm.model, lm.vocab, lm.ids(text))) < 1e-4
    assert abs(float(log_probs.exp().sum()) - 1) < 1e-5


def test_batched_reading_equals_one_text_at_a_time(lm):
    texts = ["the", "the company said", "", "a bank said it would buy a bank of shares", "said it"]
    scored = lm.score(texts, batch_size=2)
    for text, s in zip(texts, scored):
        assert len(s.logp) == len(text.split()) + 1
        assert abs(s.total - score_ids(lm.model, lm.vocab, lm.ids(text))) < 1e-4
    contexts = [lm.ids(t) for t in texts]
    batched = lm.next_log_probs(contexts)
    primed, states = lm.prime(contexts)
    for j, ctx in enumerate(contexts):
        state = lm.initial_state()
        for token in [lm.vocab.eos_id] + ctx:
            alone, state = lm.step(state, token)
        assert torch.allclose(batched[j], alone, atol=1e-5) and torch.allclose(primed[j], alone, atol=1e-5)
        for (h, c), (h2, c2) in zip(states[j], state):
            assert torch.allclose(h, h2, atol=1e-5) and torch.allclose(c, c2, atol=1e-5)
    stepped, _ = lm.advance(states, [2] * len(states))  # several texts one step on, together
    for j in range(len(states)):
        assert torch.allclose(stepped[j], lm.step(states[j], 2)[0], atol=1e-5)


def test_top_k(lm):
    top = lm.top_k("the company", 4)
    assert len(top) == 4 and [p for _, p in top] == sorted((p for _, p in top), reverse=True)
    full = lm.next_log_probs([lm.ids("the company")])[0].exp()
    assert top[0] == (lm.vocab.itos[int(full.argmax())], pytest.approx(float(full.max()), abs=1e-6))
    with pytest.raises(AwdlstmError, match="k=0"):
        lm.top_k("the", 0)


def test_unknown_words_read_as_unk(lm):
    s = lm.score(["the zebra said"])[0]
    assert s.tokens == ["the", "zebra", "said", "<eos>"] and s.scored_as == ["the", "<unk>", "said", "<eos>"]
    assert math.isfinite(s.total)
    with pytest.raises(AwdlstmError, match="token id 99"):
        lm.step(lm.initial_state(), 99)
