"""Every optimizer ``train.optimizer`` names trains the tiny preset and resumes exactly; its
knobs act only with it."""

import pytest
import torch
from safetensors.torch import load_file

from awdlstm.config import OPTIMIZER_KNOBS, TrainConfig, build_config
from awdlstm.data import SyntheticSpec, load_corpus, write_synthetic
from awdlstm.errors import AwdlstmError
from awdlstm.train.hooks import Hook
from awdlstm.train.optimizers import OPTIMIZERS
from awdlstm.train.trainer import Interrupted, Trainer

QUIET = dict(progress=False, log=lambda *a: None)


def test_the_registry_the_config_and_its_knob_table_name_the_same_optimizers():
    choices = TrainConfig.__dataclass_fields__["optimizer"].metadata.get("check") or ()
    assert set(OPTIMIZERS) == set(OPTIMIZER_KNOBS)
    assert set(OPTIMIZERS) == set(c for c in choices if c)


@pytest.mark.parametrize("sets", [["train.optimizer=momentum", "train.momentum=0.9", "train.nesterov=true",
                                   "train.lr=0.5"],
                                  ["train.optimizer=adagrad", "train.lr=0.05"],
                                  ["train.optimizer=adam", "train.adam_beta1=0", "train.lr=0.003"],
                                  ["train.optimizer=rmsprop", "train.rmsprop_alpha=0.9", "train.momentum=0.5",
                                   "train.lr=0.001"]])
def test_each_optimizer_learns_and_resumes_to_the_uninterrupted_weights(tmp_path, sets):
    folder = tmp_path / "syn"
    write_synthetic(SyntheticSpec(train_lines=300, eval_lines=30), folder)
    corpus = load_corpus(str(folder), progress=False)
    cfg = build_config("tiny", sets + ["train.epochs=2", "train.checkpoint_batches=4"], corpus=str(folder))
    full = Trainer(cfg, tmp_path / "full", corpus, **QUIET)
    results = full.run()
    history = [r["val_loss"] for r in full.records()]
    assert history[-1] < history[0] or results["valid_loss"] < 2.5  # it learns

    class StopAfterSeven(Hook):
        calls = 0

        def after_update(self, loop):
            self.calls += 1
            if self.calls == 7:
                loop.request_stop()

    with pytest.raises(Interrupted):
        Trainer(cfg, tmp_path / "cut", corpus, hooks=[StopAfterSeven()], **QUIET).run()
    Trainer.resume(tmp_path / "cut", **QUIET).run()
    a, b = load_file(str(tmp_path / "full" / "last.safetensors")), load_file(str(tmp_path / "cut" / "last.safetensors"))
    names = [k for k in a if k.startswith(("model.", "optim."))]
    assert any(k.startswith("optim.") for k in names)  # the optimizer's state travelled
    for k in names:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=0, msg=k)


@pytest.mark.parametrize("sets, needle", [
    (["train.momentum=0.9"], "train.momentum=0.9 only acts with train.optimizer='momentum' or 'rmsprop'"),
    (["train.optimizer=adagrad", "train.nesterov=true"], "train.nesterov=True only acts with"),
    (["train.optimizer=momentum"], "needs train.momentum"),
    (["train.optimizer=sgd", "train.rmsprop_alpha=0.9"], "train.rmsprop_alpha=0.9 only acts with train.optimizer='rmsprop'"),
    (["train.optimizer=rmsprop", "train.adam_beta1=0"], "train.adam_beta1=0.0 only acts with train.optimizer='adam'"),
])
def test_a_knob_of_another_optimizer_is_an_error(sets, needle):
    with pytest.raises(AwdlstmError, match=needle.replace("(", r"\(")):
        build_config("tiny", sets)


def test_adam_beta1_reaches_the_optimizer():
    from awdlstm.train.optimizers import build_optimizer
    t = build_config("tiny", ["train.optimizer=adam", "train.adam_beta1=0"]).train
    opt = build_optimizer([torch.nn.Parameter(torch.zeros(3))], 1e-3, t)
    assert opt.param_groups[0]["betas"] == (0.0, 0.999)
    assert build_optimizer([torch.nn.Parameter(torch.zeros(3))], 1e-3,
                           build_config("tiny", ["train.optimizer=adam"]).train).param_groups[0]["betas"] == (0.9, 0.999)
