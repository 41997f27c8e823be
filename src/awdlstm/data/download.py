"""Download a known corpus into the cache: progress bar, SHA-256 check, safe extraction,
atomic placement. Nothing partial is ever left at the final path."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from ..errors import AwdlstmError
from ..progress import progress_bar
from .sources import SPLITS, KnownCorpus, RemoteFile

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def download_file(url: str, dest: Path, sha256: str | None, progress: bool = True) -> str:
    """Stream ``url`` to ``dest`` and return its SHA-256; a mismatch removes ``dest``."""
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(dest, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with progress_bar(total=total, unit="B", desc=f"download {Path(url).name}", enabled=progress,
                              unit_scale=True) as bar:
                for block in iter(lambda: resp.read(_CHUNK), b""):
                    out.write(block)
                    h.update(block)
                    bar.update(len(block))
    except (urllib.error.URLError, OSError) as e:
        dest.unlink(missing_ok=True)
        raise AwdlstmError(f"{url}: download failed ({e}); check the network or put the files "
                           f"in a folder and pass its path") from None
    digest = h.hexdigest()
    if sha256 is not None and digest != sha256:
        dest.unlink(missing_ok=True)
        raise AwdlstmError(f"{url}: SHA-256 mismatch (got {digest}, expected {sha256}); "
                           f"the download was removed")
    return digest


def safe_extract(archive: Path, dest: Path, label: str) -> None:
    """Extract a .zip or tar archive into ``dest``, refusing any member that would land
    outside it (absolute paths, ``..``, links pointing out)."""
    dest = dest.resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                target = (dest / name).resolve()
                if not target.is_relative_to(dest):
                    raise AwdlstmError(f"{label}: archive member '{name}' would land outside the "
                                       f"target folder; refusing to extract")
            zf.extractall(dest)
        return
    try:
        with tarfile.open(archive) as tf:
            # The "data" filter (PEP 706) rejects absolute paths, '..', and links leaving dest.
            tf.extractall(dest, filter="data")
    except tarfile.FilterError as e:
        raise AwdlstmError(f"{label}: archive member would land outside the target folder "
                           f"({e}); refusing to extract") from None
    except tarfile.TarError as e:
        raise AwdlstmError(f"{label}: not a readable .zip or tar archive ({e})") from None


def _fetch_one(rf: RemoteFile, stage: Path, progress: bool) -> dict:
    tmp = stage / ".download"
    digest = download_file(rf.url, tmp, rf.sha256, progress)
    if not rf.members:
        tmp.rename(stage / rf.save_as)
        return {"url": rf.url, "sha256": digest}
    unpack = stage / ".unpack"
    unpack.mkdir()
    safe_extract(tmp, unpack, rf.url)
    tmp.unlink()
    for member, name in rf.members.items():
        src = unpack / member
        if not src.is_file():
            raise AwdlstmError(f"{rf.url}: archive has no member '{member}'")
        if rf.member_size is not None and src.stat().st_size != rf.member_size:
            raise AwdlstmError(f"{rf.url}: member '{member}' has {src.stat().st_size} bytes, "
                               f"expected {rf.member_size}")
        src.rename(stage / name)
    shutil.rmtree(unpack)
    return {"url": rf.url, "sha256": digest}


def _cut_char_splits(folder: Path, source: str, sizes: tuple[int, int, int]) -> None:
    """text8 / enwik8: one file of bytes cut into train/valid/test by offsets. Each byte
    becomes one character (Latin-1), stored as UTF-8 so every split is ordinary text."""
    data = (folder / source).read_bytes()
    start = 0
    for split, size in zip(SPLITS, sizes):
        (folder / f"{split}.txt").write_text(data[start:start + size].decode("latin-1"), encoding="utf-8")
        start += size
    (folder / source).unlink()


def fetch_corpus(known: KnownCorpus, target: Path, progress: bool = True) -> Path:
    """Download ``known`` into ``target`` (which must not exist yet). Work happens in a
    staging folder beside it that is renamed into place only when everything checked out."""
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{known.name}.partial-", dir=target.parent))
    try:
        record = [_fetch_one(rf, stage, progress) for rf in known.files]
        if known.char_splits is not None:
            (source,) = [n for rf in known.files for n in rf.members.values()]
            _cut_char_splits(stage, source, known.char_splits)
        (stage / "SOURCE.json").write_text(json.dumps(record, indent=1))
        os.replace(stage, target)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return target
