"""Pixel-by-pixel classification: IDX files the tests write, the 8x8 digits, the permutation
stored with the model, exact resume, and one-line errors for bad input."""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from awdlstm.cli import main
from awdlstm.data.idx import read_idx, write_idx
from awdlstm.data.pixels import load_pixels, permutation
from awdlstm.pixels.config import pixel_config
from awdlstm.pixels.trainer import PixelTrainer, open_pixel_model
from awdlstm.train.trainer import Interrupted
from tests.test_cli_data import assert_one_line_error


def write_mnist(folder, n_train=60, n_test=20, side=28, seed=0, gz=True):
    """A tiny MNIST-format set: class k (of 4) is drawn as the brightness k/3 of the last row."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        y = rng.integers(0, 4, n).astype(np.uint8)
        x = (rng.random((n, side, 28)) * 60).astype(np.uint8)
        x[:, -1, :] = (y[:, None] * 85).astype(np.uint8)
        suffix = ".gz" if gz else ""
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", x)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", y)
    return folder


def test_idx_files_round_trip_and_a_bad_one_is_named(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("a.idx", "a.idx.gz"):
        write_idx(tmp_path / name, a)
        np.testing.assert_array_equal(read_idx(tmp_path / name), a)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01")
    from awdlstm.errors import AwdlstmError
    with pytest.raises(AwdlstmError, match="bad: not an IDX file"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1]) + (5).to_bytes(4, "big") + b"abc")
    with pytest.raises(AwdlstmError, match=r"short: the IDX header says shape \(5,\)"):
        read_idx(tmp_path / "short")


def test_an_mnist_folder_splits_its_last_sixth_for_validation(tmp_path):
    data = load_pixels(str(write_mnist(tmp_path / "m", gz=False)))
    assert [len(data.y[s]) for s in ("train", "valid", "test")] == [50, 10, 20] and data.steps == 784
    assert data.x["train"].dtype == np.float32 and 0 <= data.x["train"].min() and data.x["train"].max() <= 1
    p = permutation(1, 784)
    assert sorted(p) == list(range(784)) and np.array_equal(p, np.random.default_rng(1).permutation(784))


def test_a_classifier_learns_the_generated_set_well_above_chance(tmp_path):
    folder = write_mnist(tmp_path / "m", n_train=240, n_test=60)
    cfg = pixel_config(None, [f"data={folder}", "hidden_size=16", "optimizer=adam", "lr=0.02", "batch_size=20",
                              "epochs=4", "eval_batch_size=100"])
    results = PixelTrainer(cfg, tmp_path / "run", load_pixels(str(folder)), progress=False, log=lambda *a: None).run()
    assert results["test_acc"] > 0.7  # chance: 0.25


def test_the_digits_learn_in_seconds(tmp_path):
    pytest.importorskip("sklearn")
    cfg = pixel_config("digits", ["epochs=6"])
    results = PixelTrainer(cfg, tmp_path / "d", load_pixels("digits"), progress=False, log=lambda *a: None).run()
    assert results["test_acc"] > 0.5  # chance: 0.1


@pytest.mark.parametrize("cell, sets", [("zoneout", ["zoneout_c=0.15", "zoneout_h=0.15"]),
                                        ("batchnorm-lstm", ["zoneout_c=0.15", "zoneout_h=0.15"])])
def test_a_stopped_run_resumes_to_the_uninterrupted_weights_and_keeps_its_permutation(tmp_path, cell, sets):
    folder = write_mnist(tmp_path / "m", n_train=72, n_test=12, side=4)  # 112 steps: quick
    data = load_pixels(str(folder))
    cfg = pixel_config(None, [f"data={folder}", f"cell={cell}", *sets, "hidden_size=8", "batch_size=10", "epochs=2",
                              "permute=true", "permutation_seed=7"])
    quiet = dict(progress=False, log=lambda *a: None)
    PixelTrainer(cfg, tmp_path / "whole", data, **quiet).run()
    with pytest.raises(Interrupted):
        PixelTrainer(cfg, tmp_path / "cut", data, stop_after=8, **quiet).run()  # inside the second epoch
    from awdlstm.checkpoints.checkpoint import read_checkpoint
    state = read_checkpoint(tmp_path / "cut" / "last.safetensors").state_dict()
    assert (state["state"]["epoch"], state["state"]["batch"]) == (2, 2)
    PixelTrainer(cfg, tmp_path / "cut", data, start=state, **quiet).run()
    a, b = load_file(str(tmp_path / "whole" / "last.safetensors")), load_file(str(tmp_path / "cut" / "last.safetensors"))
    for k in (k for k in a if k.startswith("model.")):
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)
    _, _, stored, _ = open_pixel_model(tmp_path / "cut")
    assert np.array_equal(stored, np.random.default_rng(7).permutation(112))


def test_bad_pixel_input_is_one_line(tmp_path, capsys):
    folder = write_mnist(tmp_path / "m", n_train=24, n_test=6, side=4)
    run = tmp_path / "run"
    assert main(["pixels", "train", "--set", f"data={folder}", "--set", "hidden_size=4", "--set", "epochs=1",
                 "--set", "permute=true", "--out", str(run)]) == 0
    capsys.readouterr()
    assert_one_line_error(main(["pixels", "eval", str(run), "--set", "permutation_seed=5"]), capsys.readouterr().err,
                          "permutation_seed=1", "cannot read")
    bad = tmp_path / "bad"
    bad.mkdir()
    write_idx(bad / "train-images-idx3-ubyte", np.zeros((12, 784), np.uint8))  # flat: not images
    assert_one_line_error(main(["pixels", "train", "--set", f"data={bad}"]), capsys.readouterr().err,
                          "train-images-idx3-ubyte", "expected images (count, rows, columns)")
    write_idx(bad / "train-images-idx3-ubyte", np.zeros((12, 28, 28), np.uint8))
    write_idx(bad / "train-labels-idx1-ubyte", np.zeros(12, np.uint8))
    write_idx(bad / "t10k-images-idx3-ubyte", np.zeros((3, 27, 28), np.uint8))
    write_idx(bad / "t10k-labels-idx1-ubyte", np.zeros(3, np.uint8))
    assert_one_line_error(main(["pixels", "train", "--set", f"data={bad}"]), capsys.readouterr().err,
                          "training images are (28, 28) but test images (27, 28)")
    assert_one_line_error(main(["pixels", "eval", str(run), "--set", "data=digits"]), capsys.readouterr().err,
                          "reads 112 pixels", "digits has 64")
    assert_one_line_error(main(["pixels", "train", "--set", "cell=gru", "--set", "zoneout_c=0.2"]),
                          capsys.readouterr().err, "pixels.zoneout_c=0.2 only acts with pixels.cell=")
    assert_one_line_error(main(["pixels", "train", "--resume", str(tmp_path / "none")]), capsys.readouterr().err,
                          "last.safetensors")


def test_mnist_downloads_into_the_cache_with_its_sha256_checked(tmp_path, monkeypatch, capsys):
    """The four IDX archives from the public source (here a local server holding files the
    test wrote), each checked against its SHA-256; a mismatch keeps nothing."""
    import hashlib

    from awdlstm.data import pixels
    folder = write_mnist(tmp_path / "src", n_train=12, n_test=6, side=4)
    import functools
    import http.server
    import threading

    from tests.data.test_download import QuietHandler
    handler = functools.partial(QuietHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(pixels, "MNIST_URL", f"http://127.0.0.1:{httpd.server_address[1]}")
        hashes = {n: hashlib.sha256((folder / f"{n}.gz").read_bytes()).hexdigest() for n in pixels.MNIST_FILES}
        monkeypatch.setattr(pixels, "MNIST_FILES", {**hashes, "t10k-labels-idx1-ubyte": "0" * 64})
        assert_one_line_error(main(["pixels", "train", "--set", "data=mnist"]), capsys.readouterr().err,
                              "t10k-labels-idx1-ubyte.gz: SHA-256 mismatch")
        assert not (pixels.cache_root() / "pixels" / "mnist").exists()
        monkeypatch.setattr(pixels, "MNIST_FILES", hashes)
        data = load_pixels("mnist", progress=False)
        assert [len(data.y[s]) for s in ("train", "valid", "test")] == [10, 2, 6]
        assert (pixels.cache_root() / "pixels" / "mnist" / "train-images-idx3-ubyte.gz").is_file()
    finally:
        httpd.shutdown()


def test_every_pixel_preset_builds_and_the_paper_recipes_say_its_numbers():
    from awdlstm.pixels.config import preset_names
    names = preset_names()
    assert {"smnist-lstm", "pmnist-lstm", "pmnist-zoneout", "pmnist-bn-zoneout", "digits"} <= set(names)
    for name in names:
        pixel_config(name)
    bz = pixel_config("pmnist-bn-zoneout")
    assert (bz.cell, bz.zoneout_c, bz.zoneout_h, bz.hidden_size, bz.lr, bz.rmsprop_alpha, bz.batch_size, bz.clip) == \
        ("batchnorm-lstm", 0.15, 0.15, 100, 1e-4, 0.5, 100, 1.0)
    assert pixel_config("pmnist-lstm").permute and not pixel_config("smnist-lstm").permute
