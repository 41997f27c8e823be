"""The download path against a real HTTP server on 127.0.0.1."""

import functools
import hashlib
import http.server
import io
import tarfile
import threading
import zipfile

import pytest

from awdlstm.cli import main
from awdlstm.data import sources
from awdlstm.data.corpus import load_corpus
from awdlstm.data.paths import cache_root

SPLIT_TEXT = {"train": "a b a\n", "valid": "b a\n", "test": "a\n"}


def tar_bytes(members: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zip_bytes(members: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return buf.getvalue()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    good = {f"corpus/{s}.txt": t for s, t in SPLIT_TEXT.items()}
    (root / "good.tar.gz").write_bytes(tar_bytes(good))
    (root / "evil.tar.gz").write_bytes(tar_bytes({**good, "../../evil.txt": "x"}))
    (root / "evil.zip").write_bytes(zip_bytes({**good, "../evil.txt": "x"}))
    handler = functools.partial(QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()


def register(monkeypatch, url: str, sha: str):
    members = {f"corpus/{s}.txt": f"{s}.txt" for s in SPLIT_TEXT}
    known = sources.KnownCorpus("testcorpus", "word", "split", (sources.RemoteFile(url, sha, members=members),))
    monkeypatch.setitem(sources.KNOWN, "testcorpus", known)


def leftovers():
    corpora = cache_root() / "corpora"
    return sorted(p.name for p in corpora.iterdir()) if corpora.exists() else []


def test_good_archive_downloads_verifies_and_loads(server, monkeypatch):
    base, root = server
    register(monkeypatch, f"{base}/good.tar.gz", hashlib.sha256((root / "good.tar.gz").read_bytes()).hexdigest())
    c = load_corpus("testcorpus", progress=False)
    assert c.stats["train"].tokens == 4 and len(c.vocab) == 3
    assert leftovers() == ["testcorpus"]
    # The second load uses the cache folder without touching the network.
    register(monkeypatch, f"{base}/missing.tar.gz", "0" * 64)
    assert load_corpus("testcorpus").stats["valid"].tokens == 3


def test_checksum_mismatch_is_a_clean_error_and_leaves_nothing(server, monkeypatch, capsys):
    base, _ = server
    register(monkeypatch, f"{base}/good.tar.gz", "0" * 64)
    assert main(["data", "testcorpus"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("awdlstm: error:") and "SHA-256 mismatch" in err and "good.tar.gz" in err
    assert "\n" not in err
    assert leftovers() == []


@pytest.mark.parametrize("archive", ["evil.tar.gz", "evil.zip"])
def test_path_traversal_member_is_refused(server, monkeypatch, capsys, tmp_path, archive):
    base, root = server
    register(monkeypatch, f"{base}/{archive}", hashlib.sha256((root / archive).read_bytes()).hexdigest())
    assert main(["data", "testcorpus"]) == 2
    err = capsys.readouterr().err
    assert "outside the target folder" in err
    assert leftovers() == []
    assert not list(tmp_path.rglob("evil.txt"))


def test_unreachable_source_is_a_clean_error(monkeypatch, capsys):
    register(monkeypatch, "http://127.0.0.1:9/nothing.tar.gz", "0" * 64)
    assert main(["data", "testcorpus"]) == 2
    assert "download failed" in capsys.readouterr().err
    assert leftovers() == []
