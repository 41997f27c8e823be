import copy

import torch

from awdlstm import ModelConfig, build_model
from awdlstm.evaluation import score_dynamic, score_static


def small_model():
    torch.manual_seed(0)
    return build_model(ModelConfig(emb_size=8, hidden_size=16, num_layers=2), 30).eval()


def test_lr_zero_equals_static_evaluation():
    model = small_model()
    ids = torch.randint(0, 30, (200,)).numpy()
    static = score_static(model, ids, bptt=7)
    dyn = score_dynamic(model, ids, lr=0.0, decay=0.0, rule="sgd", bptt=5)
    torch.testing.assert_close(dyn.logp, static.logp, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(dyn.hidden, static.hidden, atol=1e-5, rtol=1e-5)


def test_adapts_without_touching_the_callers_weights():
    model = small_model()
    before = copy.deepcopy(model.state_dict())
    ids = torch.arange(10).repeat(30).numpy() % 30  # repetitive: adaptation must help
    static = score_static(model, ids)
    sgd = score_dynamic(model, ids, lr=0.5, rule="sgd", bptt=5)
    rms = score_dynamic(model, ids, lr=1e-3, decay=0.01, rule="rms", bptt=5, train_ids=ids, stat_batches=5)
    assert sgd.loss() < static.loss() and rms.loss() < static.loss()
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
