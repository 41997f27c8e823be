"""The token cache: uint16 or uint32 ids that every later load memory-maps, written
atomically; batches and training read from it exactly as from ids in memory."""

import os

import numpy as np
import torch

from awdlstm.data.batching import BPTTIterator, batchify
from awdlstm.data.corpus import load_corpus
from awdlstm.data.token_cache import read_entry
from tests.conftest import write_corpus

TRAIN = "".join(f"w{i % 97} v{i % 13} w{(i * 7) % 97}\n" for i in range(600))


def test_a_cached_load_memory_maps_the_smallest_id_type(tmp_path):
    folder = write_corpus(tmp_path / "c", TRAIN, "w1 v2\n", "w3 v4\n")
    first = load_corpus(str(folder), progress=False)
    again = load_corpus(str(folder), progress=False)
    assert isinstance(again.train, np.memmap) and again.train.dtype == np.uint16
    assert not again.train.flags.writeable  # read-only: every process shares the pages
    assert (again.cache_path / "train.bin").stat().st_size == 2 * first.stats["train"].tokens
    in_memory = load_corpus(str(folder), use_cache=False, progress=False)
    assert not isinstance(in_memory.train, np.memmap) and in_memory.cache_path is None
    np.testing.assert_array_equal(in_memory.train, again.train)


def test_a_vocabulary_over_65536_entries_is_stored_as_uint32(tmp_path):
    words = " ".join(f"t{i}" for i in range(70_000))
    c = load_corpus(str(write_corpus(tmp_path / "big", words + "\n", "t1\n", "t2\n")), progress=False)
    assert len(c.vocab) == 70_001 and c.train.dtype == np.uint32
    assert c.vocab.decode(c.train[-2:]) == ["t69999", "<eos>"]


def test_a_damaged_entry_is_written_anew(tmp_path):
    folder = write_corpus(tmp_path / "c", TRAIN, "w1\n", "w2\n")
    c = load_corpus(str(folder), progress=False)
    with open(c.cache_path / "valid.bin", "ab") as f:
        f.write(b"\0")  # not the size meta.json promises
    assert read_entry(c.cache_path) is None
    again = load_corpus(str(folder), progress=False)
    assert again.stats["valid"].tokens == 2 and len(again.valid) == 2


def test_a_killed_writers_folder_is_removed_and_a_live_ones_kept(tmp_path):
    folder = write_corpus(tmp_path / "c", TRAIN, "w1\n", "w2\n")
    c = load_corpus(str(folder), progress=False)
    dead = c.cache_path.parent / f".{c.cache_path.name}.tmp-{2 ** 22 + 12345}-abc"
    live = c.cache_path.parent / f".{c.cache_path.name}.tmp-{os.getpid()}-def"
    dead.mkdir()
    live.mkdir()
    import shutil
    shutil.rmtree(c.cache_path)
    load_corpus(str(folder), progress=False)
    assert not dead.exists() and live.exists()


def reference_batchify(ids, B):
    """The contiguous (N // B, B) int64 tensor that batchify once returned."""
    ids = torch.as_tensor(np.asarray(ids, dtype=np.int64))
    rows = len(ids) // B
    return ids[: rows * B].view(B, rows).t().contiguous()


def test_windows_of_the_memory_mapped_ids_are_the_in_memory_batches(tmp_path):
    folder = write_corpus(tmp_path / "c", TRAIN, "w1\n", "w2\n")
    load_corpus(str(folder), progress=False)
    mapped = load_corpus(str(folder), progress=False).train
    ref = reference_batchify(mapped, 7)
    source = batchify(mapped, 7)
    assert source.shape == tuple(ref.shape)
    torch.testing.assert_close(source[:], ref)
    torch.testing.assert_close(source.columns(2, 5)[:], ref[:, 2:5])
    got = list(BPTTIterator(source.columns(2, 5), 9, variable=True, seed=4))
    want = list(BPTTIterator(batchify(np.asarray(mapped, dtype=np.int64), 7).columns(2, 5), 9, variable=True, seed=4))
    assert len(got) == len(want) > 5
    for a, b in zip(got, want):
        assert a.x.dtype == torch.long and torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
        assert torch.equal(a.x, ref[b.start:b.start + len(b.x), 2:5])


def test_training_on_the_memory_mapped_corpus_ends_with_the_in_memory_weights(tmp_path):
    from awdlstm.config import build_config
    from awdlstm.train import Trainer

    folder = write_corpus(tmp_path / "c", TRAIN, TRAIN[:2000], TRAIN[:1000])
    load_corpus(str(folder), progress=False)
    corpora = {"mapped": load_corpus(str(folder), progress=False),
               "memory": load_corpus(str(folder), use_cache=False, progress=False)}
    assert isinstance(corpora["mapped"].train, np.memmap)
    cfg = build_config("tiny", ["train.epochs=1", "train.batch_size=4", "train.bptt=8", "train.variable_bptt=true",
                                "train.threads=1"], str(folder))
    weights = {}
    for name, corpus in corpora.items():
        trainer = Trainer(cfg, tmp_path / name, corpus, progress=False, log=lambda *a: None)
        trainer.run_epoch(trainer.clock())
        weights[name] = trainer.model.state_dict()
    for k in weights["memory"]:
        torch.testing.assert_close(weights["mapped"][k], weights["memory"][k], rtol=0, atol=0, msg=k)


def test_two_processes_train_the_same_weights_from_the_mapped_and_the_in_memory_corpus(tmp_path):
    import subprocess
    import sys

    from safetensors.torch import load_file
    folder = write_corpus(tmp_path / "c", TRAIN, TRAIN[:2000], TRAIN[:1000])
    load_corpus(str(folder), progress=False)  # the cache entry both processes map
    script = os.path.join(os.path.dirname(__file__), "ddp_corpus.py")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", script,
           str(folder), str(tmp_path / "out")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    mapped, memory = load_file(str(tmp_path / "out" / "mapped.safetensors")), load_file(str(tmp_path / "out" / "memory.safetensors"))
    assert mapped.keys() == memory.keys()
    for k in mapped:
        torch.testing.assert_close(mapped[k], memory[k], rtol=0, atol=0, msg=k)
