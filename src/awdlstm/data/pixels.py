"""Pixel-by-pixel classification data: images read one pixel per time step.

``mnist``: the four IDX files (``train-images-idx3-ubyte`` etc., as they come or ``.gz``)
from a folder the user names, ``$AWDLSTM_DATA/mnist``, the cache, or downloaded from the
public source into the cache with their SHA-256 checked. As in the zoneout paper's code
(after Cooijmans et al.), the first 50,000 training images train, the last 10,000 (a sixth:
the same share of a smaller set) validate, and the 10,000 test images test; 784 steps of
one pixel in [0, 1].

``digits``: scikit-learn's bundled 8x8 digits (1,797 images, values 0..16), a small real
set of 64 steps: shuffled with seed 0, then 1,197 train, 300 valid, 300 test.

A permutation (permuted sequential MNIST) is drawn from its seed as
``numpy.random.default_rng(seed).permutation(steps)``: a true permutation (the paper's code
drew indices with replacement). It is stored with the model.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import AwdlstmError
from .download import download_file
from .idx import read_idx
from .paths import DATA_ENV, cache_root

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist"
MNIST_FILES = {  # name: SHA-256 of the .gz file
    "train-images-idx3-ubyte": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
VALID_SHARE = 6  # the last 1/6 of the training images validate: 10,000 of MNIST's 60,000
DIGITS_SPLIT = (1197, 300, 300)
SPLITS = ("train", "valid", "test")


@dataclass
class PixelSet:
    """Images as rows of pixels in [0, 1]: ``x[split]`` (N, steps) float32, ``y[split]`` (N,) int64."""

    name: str
    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    classes: int = 10

    @property
    def steps(self) -> int:
        return self.x["train"].shape[1]


def permutation(seed: int | None, steps: int) -> np.ndarray | None:
    """The fixed pixel order of seed ``seed`` (None: the images' own order)."""
    return None if seed is None else np.random.default_rng(seed).permutation(steps)


def _mnist_folder(data_dir: str | None, download: bool, progress: bool) -> Path:
    for base in (data_dir, os.environ.get(DATA_ENV)):
        if base:
            for folder in (Path(base).expanduser(), Path(base).expanduser() / "mnist"):
                if _find(folder, "train-images-idx3-ubyte"):
                    return folder
    cached = cache_root() / "pixels" / "mnist"
    if cached.is_dir():
        return cached
    if not download:
        raise AwdlstmError(f"MNIST not found in --data-dir, ${DATA_ENV}/mnist or {cached}, and downloading is off")
    cached.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".mnist.partial-", dir=cached.parent))
    try:
        for name, sha in MNIST_FILES.items():
            download_file(f"{MNIST_URL}/{name}.gz", stage / f"{name}.gz", sha, progress)
        os.replace(stage, cached)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return cached


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _images(folder: Path, name: str) -> np.ndarray:
    path = _find(folder, name)
    if path is None:
        raise AwdlstmError(f"{folder}: no {name} (or {name}.gz); an MNIST folder holds the four IDX files")
    a = read_idx(path)
    if "images" in name and a.ndim != 3:
        raise AwdlstmError(f"{path}: values of shape {a.shape}, expected images (count, rows, columns), e.g. "
                           f"(60000, 28, 28) for MNIST")
    if "labels" in name and a.ndim != 1:
        raise AwdlstmError(f"{path}: labels of shape {a.shape}, expected one label per image")
    return a


def load_mnist(data_dir: str | None = None, download: bool = True, progress: bool = True) -> PixelSet:
    folder = _mnist_folder(data_dir, download, progress)
    xs = {"train": _images(folder, "train-images-idx3-ubyte"), "test": _images(folder, "t10k-images-idx3-ubyte")}
    ys = {"train": _images(folder, "train-labels-idx1-ubyte"), "test": _images(folder, "t10k-labels-idx1-ubyte")}
    if xs["train"].shape[1:] != xs["test"].shape[1:]:
        raise AwdlstmError(f"{folder}: training images are {xs['train'].shape[1:]} but test images "
                           f"{xs['test'].shape[1:]}; both splits need one image size")
    for split in ("train", "test"):
        if len(xs[split]) != len(ys[split]):
            raise AwdlstmError(f"{folder}: {len(xs[split])} {split} images but {len(ys[split])} labels")
    if len(xs["train"]) < VALID_SHARE or not len(xs["test"]):
        raise AwdlstmError(f"{folder}: {len(xs['train'])} training and {len(xs['test'])} test images; the last "
                           f"sixth of the training images validate, so at least {VALID_SHARE} are needed, and a test image")
    x, y = xs["train"], ys["train"]
    cut = len(x) - len(x) // VALID_SHARE
    return PixelSet("mnist", {"train": _flat(x[:cut]), "valid": _flat(x[cut:]), "test": _flat(xs["test"])},
                    {"train": y[:cut].astype(np.int64), "valid": y[cut:].astype(np.int64),
                     "test": ys["test"].astype(np.int64)})


def _flat(images: np.ndarray, scale: float = 255.0) -> np.ndarray:
    return (images.reshape(len(images), -1) / scale).astype(np.float32)


def load_digits_set() -> PixelSet:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise AwdlstmError("the digits set is scikit-learn's: pip install scikit-learn") from None
    d = load_digits()
    order = np.random.default_rng(0).permutation(len(d.target))
    x, y = _flat(d.images[order], 16.0), d.target[order].astype(np.int64)
    a, b, _ = DIGITS_SPLIT
    return PixelSet("digits", {"train": x[:a], "valid": x[a:a + b], "test": x[a + b:]},
                    {"train": y[:a], "valid": y[a:a + b], "test": y[a + b:]})


def load_pixels(source: str, data_dir: str | None = None, download: bool = True, progress: bool = True) -> PixelSet:
    """``mnist``, ``digits``, or a folder of MNIST IDX files."""
    if source == "digits":
        return load_digits_set()
    if source == "mnist":
        return load_mnist(data_dir, download, progress)
    if Path(source).expanduser().is_dir():
        return load_mnist(str(Path(source).expanduser()), download=False)
    raise AwdlstmError(f"pixels.data={source!r}: give mnist, digits, or a folder of MNIST IDX files")
