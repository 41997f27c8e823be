"""Run by torchrun from test_token_cache.py: one epoch on the memory-mapped corpus and one on
the same corpus in memory, in each process; rank 0 writes the weights of both."""

import sys
from pathlib import Path

import numpy as np
from safetensors.torch import save_file

from awdlstm.config import build_config
from awdlstm.data.corpus import load_corpus
from awdlstm.train import Trainer

folder, out = Path(sys.argv[1]), Path(sys.argv[2])
cfg = build_config("tiny", ["train.epochs=1", "train.batch_size=4", "train.bptt=8", "train.variable_bptt=true",
                            "train.threads=1"], str(folder))
for name, cached in (("mapped", True), ("memory", False)):
    corpus = load_corpus(str(folder), use_cache=cached, progress=False)
    assert isinstance(corpus.train, np.memmap) == cached
    trainer = Trainer(cfg, out / name, corpus, progress=False, log=lambda *a: None)
    trainer.run_epoch(trainer.clock())
    if trainer.machine.is_main:
        out.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().clone() for k, v in trainer.model.state_dict().items()}, str(out / f"{name}.safetensors"))
