"""``most-eval data``: resumable download, digest checks and safe extraction against a local HTTP server.

Everything runs on 127.0.0.1 (an ephemeral port, shut down after each test) with archives generated here; the bundled
manifest is only read, never fetched.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import re
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from most_eval.data import catalog, download, extract, verify
from most_eval.cli.data import data_app

MAX_REQUESTS = 50  # the server answers 503 beyond this, so a retry loop cannot run away


# ---------------------------------------------------------------------------------------------------------------------
# A local file server with Range support and scripted misbehaviour


class _Handler(BaseHTTPRequestHandler):
    timeout = 5  # seconds a connection may idle

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        srv = self.server
        with srv.lock:
            srv.requests.append((self.path, self.headers.get("Range")))
            count = len(srv.requests)
            drop = srv.drop_after.pop(self.path, None)  # drop only the first request of that path
        if count > MAX_REQUESTS:
            self.send_error(503)
            return
        if self.path not in srv.files:
            self.send_error(404)
            return
        data = srv.files[self.path]
        start, status = 0, 200
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match and self.path not in srv.ignore_range:
            start = int(match.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            status = 206
        body = data[start:]
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if drop is not None:  # announce the whole body, send part of it, hang up
            self.wfile.write(body[:drop])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.lock = threading.Lock()
    httpd.files, httpd.requests, httpd.drop_after, httpd.ignore_range = {}, [], {}, set()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


# ---------------------------------------------------------------------------------------------------------------------
# Archives and manifests


def _add(tf: tarfile.TarFile, name: str, data: bytes = b"", **attrs) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    for key, value in attrs.items():
        setattr(info, key, value)
    tf.addfile(info, io.BytesIO(data) if data else None)


def make_tar(entries: list[tuple], mode: str = "w:gz") -> bytes:
    """A tar archive from ``(name, data)`` or ``(name, data, {TarInfo attributes})`` entries."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for entry in entries:
            name, data, attrs = (*entry, {})[:3]
            _add(tf, name, data, **attrs)
    return buf.getvalue()


def libri_tar(split: str = "test-clean", n_chapters: int = 3, per: int = 4) -> bytes:
    """A LibriSpeech-shaped archive: ``LibriSpeech/{README.TXT, <split>/<spk>/<chap>/...}`` (fake flac bytes)."""
    rng = random.Random(split)
    entries = [("LibriSpeech/README.TXT", b"LibriSpeech test archive\n")]
    for c in range(n_chapters):
        spk, chap = 100 + c, 200 + c
        folder = f"LibriSpeech/{split}/{spk}/{chap}"
        lines = []
        for u in range(per):
            uid = f"{spk}-{chap}-{u:04d}"
            entries.append((f"{folder}/{uid}.flac", b"fLaC" + rng.randbytes(3000)))  # incompressible, like flac
            lines.append(f"{uid} SOME WORDS NUMBER {u}")
        entries.append((f"{folder}/{spk}-{chap}.trans.txt", ("\n".join(lines) + "\n").encode()))
    return make_tar(entries)


def write_manifest(path: Path, datasets: dict) -> Path:
    path.write_text(json.dumps({"version": 1, "datasets": datasets}, indent=1))
    return path


def archive_entry(url: str, data: bytes, extracts_to: str, *, file: str = "data.tar.gz", md5: str | None = "auto",
                  sha256: str | None = None, **extra) -> dict:
    return {"url": url, "file": file, "size": len(data), "extracts_to": extracts_to,
            "md5": hashlib.md5(data).hexdigest() if md5 == "auto" else md5, "sha256": sha256, **extra}


@pytest.fixture
def libri(server, tmp_path):
    """A served LibriSpeech-shaped archive and a manifest for it (12 utterances)."""
    data = libri_tar()
    server.files["/12/test-clean.tar.gz"] = data
    manifest = write_manifest(tmp_path / "manifest.json", {"mini-libri": {
        "description": "12 fake utterances", "folder": "LibriSpeech/test-clean",
        "archives": [archive_entry(server.url + "/12/test-clean.tar.gz", data, "LibriSpeech/test-clean",
                                   file="test-clean.tar.gz")],
        "checks": [{"glob": "LibriSpeech/test-clean/*/*/*.flac", "count": 12, "what": "flac files"},
                   {"librispeech_split": "LibriSpeech/test-clean", "count": 12}]}})
    return data, manifest


def fast(**kw) -> dict:
    return {"progress": False, "backoff": 0.01, "timeout": 5, **kw}


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# ---------------------------------------------------------------------------------------------------------------------
# Download, resume, digest


def test_clean_download_verify_extract(libri, tmp_path, server):
    data, manifest = libri
    root = tmp_path / "data"
    result = download.download_dataset("mini-libri", root, manifest=manifest, **fast())
    assert not result.already_present and result.archives[0][1] == "md5 (sha256 unknown)"
    assert (root / "archives" / "test-clean.tar.gz").read_bytes() == data
    assert len(list((root / "LibriSpeech" / "test-clean").glob("*/*/*.flac"))) == 12
    assert (root / "LibriSpeech" / "README.TXT").is_file()  # the archive's other files land next to the split
    assert not any(p.name.startswith(extract.TMP_PREFIX) for p in root.iterdir())
    assert not (root / "archives" / "test-clean.tar.gz.part").exists()
    report = verify.verify_dataset("mini-libri", root, manifest=manifest)
    assert report.ok, report.failures
    assert any("md5 (sha256 unknown) match" in r.message for r in report.results)
    # a second download finds it in place and makes no request
    before = len(server.requests)
    assert download.download_dataset("mini-libri", root, manifest=manifest, **fast()).already_present
    assert len(server.requests) == before


def test_dropped_connection_resumes_with_range(libri, tmp_path, server):
    data, manifest = libri
    server.drop_after["/12/test-clean.tar.gz"] = 1000  # first response: full Content-Length, 1,000 bytes, hang up
    root = tmp_path / "data"
    notes = []
    download.download_dataset("mini-libri", root, manifest=manifest, log=notes.append, **fast())
    assert (root / "archives" / "test-clean.tar.gz").read_bytes() == data
    assert [r for _, r in server.requests] == [None, "bytes=1000-"]
    assert any("connection closed after 1000" in n for n in notes)
    assert verify.verify_dataset("mini-libri", root, manifest=manifest).ok


def test_partial_file_is_continued(libri, tmp_path, server):
    data, manifest = libri
    root = tmp_path / "data"
    (root / "archives").mkdir(parents=True)
    (root / "archives" / "test-clean.tar.gz.part").write_bytes(data[:777])
    download.download_dataset("mini-libri", root, manifest=manifest, **fast())
    assert server.requests == [("/12/test-clean.tar.gz", "bytes=777-")]
    assert (root / "archives" / "test-clean.tar.gz").read_bytes() == data


def test_server_ignoring_range_restarts_cleanly(libri, tmp_path, server):
    data, manifest = libri
    server.ignore_range.add("/12/test-clean.tar.gz")
    root = tmp_path / "data"
    (root / "archives").mkdir(parents=True)
    (root / "archives" / "test-clean.tar.gz.part").write_bytes(b"X" * 500)  # garbage: must not survive
    notes = []
    download.download_dataset("mini-libri", root, manifest=manifest, log=notes.append, **fast())
    assert server.requests == [("/12/test-clean.tar.gz", "bytes=500-")]
    assert (root / "archives" / "test-clean.tar.gz").read_bytes() == data
    assert any("ignored the Range request" in n for n in notes)


def test_drop_then_server_ignoring_range(libri, tmp_path, server):
    data, manifest = libri
    server.drop_after["/12/test-clean.tar.gz"] = 2000
    server.ignore_range.add("/12/test-clean.tar.gz")
    root = tmp_path / "data"
    download.download_dataset("mini-libri", root, manifest=manifest, **fast())
    assert (root / "archives" / "test-clean.tar.gz").read_bytes() == data


def test_gives_up_after_retries(tmp_path, server):
    data = libri_tar()
    server.files["/x.tar.gz"] = data
    manifest = write_manifest(tmp_path / "m.json", {"x": {
        "folder": "X", "archives": [archive_entry(server.url + "/x.tar.gz", data, "X")]}})
    server.ignore_range.add("/x.tar.gz")

    class AlwaysDrop(dict):  # every response hangs up at byte 100 and the server never resumes: no progress
        def pop(self, key, default=None):
            return 100

    server.drop_after = AlwaysDrop()
    with pytest.raises(catalog.DatasetDownloadError, match=r"giving up after 2 retries.*rerun to resume"):
        download.download_dataset("x", tmp_path / "data", manifest=manifest, **fast(retries=2))
    assert len(server.requests) == 3


def test_unknown_size_and_digest_416_restarts(tmp_path, server):
    data = libri_tar()
    server.files["/u.tar.gz"] = data
    manifest = write_manifest(tmp_path / "m.json", {"u": {"folder": "LibriSpeech/test-clean", "archives": [
        {"url": server.url + "/u.tar.gz", "file": "u.tar.gz", "extracts_to": "LibriSpeech/test-clean"}]}})
    root = tmp_path / "data"
    (root / "archives").mkdir(parents=True)
    (root / "archives" / "u.tar.gz.part").write_bytes(data + b"extra")  # longer than the file: the server says 416
    result = download.download_dataset("u", root, manifest=manifest, **fast())
    assert result.archives[0][1] == "size only (no digest known)"
    assert [r for _, r in server.requests] == [f"bytes={len(data) + 5}-", None]
    assert (root / "archives" / "u.tar.gz").read_bytes() == data


def test_http_404_is_one_line_error(tmp_path, server):
    manifest = write_manifest(tmp_path / "m.json", {"gone": {
        "folder": "G", "archives": [{"url": server.url + "/missing.tar.gz", "file": "g.tar.gz", "extracts_to": "G"}]}})
    with pytest.raises(catalog.DatasetDownloadError, match="HTTP 404") as err:
        download.download_dataset("gone", tmp_path / "data", manifest=manifest, **fast())
    assert "\n" not in str(err.value)
    assert len(server.requests) == 1  # a 404 is not retried


def test_wrong_digest_refuses_and_extracts_nothing(tmp_path, server):
    data = libri_tar()
    server.files["/bad.tar.gz"] = data
    manifest = write_manifest(tmp_path / "m.json", {"bad": {
        "folder": "LibriSpeech/test-clean",
        "archives": [archive_entry(server.url + "/bad.tar.gz", data, "LibriSpeech/test-clean", md5="0" * 32)]}})
    root = tmp_path / "data"
    with pytest.raises(catalog.DatasetDownloadError, match=r"md5 [0-9a-f]{32} does not match the manifest's 0{32}"):
        download.download_dataset("bad", root, manifest=manifest, **fast())
    assert not (root / "LibriSpeech").exists()
    assert not (root / "archives" / "data.tar.gz").exists() and not (root / "archives" / "data.tar.gz.part").exists()


def test_sha256_is_checked_when_known(tmp_path, server):
    data = libri_tar()
    server.files["/s.tar.gz"] = data
    good = hashlib.sha256(data).hexdigest()
    entry = archive_entry(server.url + "/s.tar.gz", data, "LibriSpeech/test-clean", sha256=good)
    manifest = write_manifest(tmp_path / "m.json", {"s": {"folder": "LibriSpeech/test-clean", "archives": [entry]}})
    result = download.download_dataset("s", tmp_path / "ok", manifest=manifest, **fast())
    assert result.archives[0][1] == "sha256 + md5"
    entry["sha256"] = "f" * 64
    manifest = write_manifest(tmp_path / "m2.json", {"s": {"folder": "LibriSpeech/test-clean", "archives": [entry]}})
    with pytest.raises(catalog.DatasetDownloadError, match="sha256"):
        download.download_dataset("s", tmp_path / "bad", manifest=manifest, **fast())


def test_verify_reports_bad_archive_and_counts(libri, tmp_path):
    data, manifest = libri
    root = tmp_path / "data"
    download.download_dataset("mini-libri", root, manifest=manifest, **fast())
    (root / "archives" / "test-clean.tar.gz").write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))  # same size
    next(root.glob("LibriSpeech/test-clean/*/*/*.flac")).unlink()
    report = verify.verify_dataset("mini-libri", root, manifest=manifest)
    text = " | ".join(report.failures)
    assert "11 flac files (expected 12)" in text
    assert "1 lines without audio" in text
    assert "md5" in text and "does not match" in text


# ---------------------------------------------------------------------------------------------------------------------
# Hostile archives


HOSTILE = {
    "dotdot": ([("Evil/data/ok.txt", b"ok"), ("../evil.txt", b"pwned")], "'..' component"),
    "nested-dotdot": ([("Evil/data/../../../evil.txt", b"pwned")], "'..' component"),
    "absolute": ([("Evil/data/ok.txt", b"ok"), ("/tmp/most-eval-test-evil.txt", b"pwned")], "absolute path"),
    "symlink-etc": ([("Evil/data/etc", b"", {"type": tarfile.SYMTYPE, "linkname": "/etc"})], "points outside"),
    "symlink-up": ([("Evil/data/up", b"", {"type": tarfile.SYMTYPE, "linkname": "../../.."})], "points outside"),
    "hardlink-out": ([("Evil/data/passwd", b"", {"type": tarfile.LNKTYPE, "linkname": "../../etc/passwd"})],
                     "points outside"),
    "hardlink-abs": ([("Evil/data/passwd", b"", {"type": tarfile.LNKTYPE, "linkname": "/etc/passwd"})],
                     "points outside"),
    "through-symlink": ([("Evil/data/sub/l", b"", {"type": tarfile.SYMTYPE, "linkname": ".."}),
                         ("Evil/data/sub/l/x.txt", b"via link")], "inside a symlinked folder"),
    "symlink-chain": ([("Evil/d/up", b"", {"type": tarfile.SYMTYPE, "linkname": ".."}),
                       ("Evil/data/esc", b"", {"type": tarfile.SYMTYPE, "linkname": "../d/up/../.."})],
                      "goes through another symlink"),
    "device": ([("Evil/data/null", b"", {"type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3})],
               "device file or fifo"),
    "fifo": ([("Evil/data/pipe", b"", {"type": tarfile.FIFOTYPE})], "device file or fifo"),
}


@pytest.fixture
def evil_root(tmp_path):
    """A root holding earlier data that hostile archives must leave intact."""
    root = tmp_path / "root"
    (root / "Evil" / "data").mkdir(parents=True)
    (root / "Evil" / "data" / "keep.txt").write_text("earlier data")
    return root


def _assert_untouched(tmp_path: Path, root: Path) -> None:
    assert (root / "Evil" / "data" / "keep.txt").read_text() == "earlier data"
    assert tree(root) == {"Evil", "Evil/data", "Evil/data/keep.txt", "archives", "archives/data.tar.gz"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "root"]
    assert not Path("/tmp/most-eval-test-evil.txt").exists()


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_tar_is_refused(case, tmp_path, server, evil_root):
    entries, why = HOSTILE[case]
    data = make_tar(entries)
    server.files["/evil.tar.gz"] = data
    manifest = write_manifest(tmp_path / "m.json", {"evil": {
        "folder": "Evil/data", "archives": [archive_entry(server.url + "/evil.tar.gz", data, "Evil/data")]}})
    with pytest.raises(catalog.DatasetDownloadError) as err:
        download.download_dataset("evil", evil_root, manifest=manifest, force=True, **fast())
    message = str(err.value)
    assert "\n" not in message and message.startswith("data.tar.gz: member ") and why in message, message
    _assert_untouched(tmp_path, evil_root)


def test_own_checks_refuse_without_the_data_filter(tmp_path, monkeypatch):
    # as on Python < 3.11.4 (Debian 12's 3.11.2 has no data filter at all): only our checks stand in the way
    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    for case, (entries, why) in HOSTILE.items():
        archive = tmp_path / f"{case}.tar.gz"
        archive.write_bytes(make_tar(entries))
        root = tmp_path / f"root-{case}"
        with pytest.raises(catalog.DatasetDownloadError, match=re.escape(why)):
            extract.safe_extract(archive, root, "Evil/data")
        assert tree(root) == set(), case
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("root-")) == sorted(
        f"{case}.tar.gz" for case in HOSTILE)


def test_declared_size_over_the_cap_is_refused(tmp_path, server, evil_root):
    # 50 MB of zeros compress to ~50 KB: far above the default cap of 4 x the archive size
    data = make_tar([("Evil/data/ok.txt", b"ok"), ("Evil/data/bomb.bin", bytes(50_000_000))])
    assert len(data) * extract.EXTRACT_CAP_FACTOR < 50_000_000
    server.files["/bomb.tar.gz"] = data
    manifest = write_manifest(tmp_path / "m.json", {"evil": {
        "folder": "Evil/data", "archives": [archive_entry(server.url + "/bomb.tar.gz", data, "Evil/data")]}})
    with pytest.raises(catalog.DatasetDownloadError, match=r"data.tar.gz: member 'Evil/data/bomb.bin' refused: total "
                                                      r"uncompressed size would exceed the cap"):
        download.download_dataset("evil", evil_root, manifest=manifest, force=True, **fast())
    _assert_untouched(tmp_path, evil_root)


def test_cap_is_configurable(tmp_path):
    archive = tmp_path / "small.tar"
    archive.write_bytes(make_tar([("A/b.bin", bytes(5000))], mode="w"))
    with pytest.raises(catalog.DatasetDownloadError, match="cap of 1000 bytes"):
        extract.safe_extract(archive, tmp_path / "r1", "A", max_bytes=1000)
    assert extract.safe_extract(archive, tmp_path / "r2", "A", max_bytes=10_000) == tmp_path / "r2" / "A"
    assert (tmp_path / "r2" / "A" / "b.bin").stat().st_size == 5000


def test_hostile_zip_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("Z/ok.txt", "ok")
        zf.writestr("../zip-evil.txt", "pwned")
    with pytest.raises(catalog.DatasetDownloadError, match=r"evil.zip: member '../zip-evil.txt' refused: '..'"):
        extract.safe_extract(archive, tmp_path / "root", "Z")
    assert not (tmp_path / "zip-evil.txt").exists()
    assert tree(tmp_path / "root") == set()
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("Z/a/ok.txt", "ok")
    extract.safe_extract(good, tmp_path / "root", "Z")
    assert (tmp_path / "root" / "Z" / "a" / "ok.txt").read_text() == "ok"


def test_archive_without_expected_folder_keeps_earlier_data(tmp_path, server, evil_root):
    data = make_tar([("Other/file.txt", b"x")])
    server.files["/other.tar.gz"] = data
    manifest = write_manifest(tmp_path / "m.json", {"evil": {
        "folder": "Evil/data", "archives": [archive_entry(server.url + "/other.tar.gz", data, "Evil/data")]}})
    with pytest.raises(catalog.DatasetDownloadError, match="holds no folder Evil/data/"):
        download.download_dataset("evil", evil_root, manifest=manifest, force=True, **fast())
    _assert_untouched(tmp_path, evil_root)


def test_force_replaces_atomically_and_failed_checks_keep_old(libri, tmp_path, server):
    data, manifest = libri
    root = tmp_path / "data"
    (root / "LibriSpeech" / "test-clean").mkdir(parents=True)
    (root / "LibriSpeech" / "test-clean" / "old.txt").write_text("old")
    with pytest.raises(catalog.DatasetDownloadError, match="exists but fails verification.*--force"):
        download.download_dataset("mini-libri", root, manifest=manifest, **fast())
    # an archive whose tree fails the manifest's checks is not moved in
    short = libri_tar(n_chapters=2)
    server.files["/12/test-clean.tar.gz"] = short
    spec = catalog.get_dataset("mini-libri", manifest)
    bad = catalog.DatasetSpec(**{**spec.__dict__, "archives": (catalog.Archive(**{
        **spec.archives[0].__dict__, "size": len(short), "md5": hashlib.md5(short).hexdigest()}),)})
    with pytest.raises(catalog.DatasetDownloadError, match=r"extracted tree fails verification .*8 flac files"):
        download.download_dataset(bad, root, force=True, **fast())
    assert tree(root / "LibriSpeech" / "test-clean") == {"old.txt"}
    # the right archive replaces the old folder
    server.files["/12/test-clean.tar.gz"] = data
    (root / "archives" / "test-clean.tar.gz").unlink()
    download.download_dataset("mini-libri", root, manifest=manifest, force=True, **fast())
    assert not (root / "LibriSpeech" / "test-clean" / "old.txt").exists()
    assert verify.verify_dataset("mini-libri", root, manifest=manifest).ok


# ---------------------------------------------------------------------------------------------------------------------
# The bundled manifest


def test_bundled_manifest_matches_the_reference():
    specs = catalog.load_catalog(catalog.DEFAULT_CATALOG)
    clean, other = specs["librispeech-test-clean"].archives[0], specs["librispeech-test-other"].archives[0]
    assert (clean.size, clean.md5, clean.sha256) == (346663984, "32fa31d27d2e1cad72775fee3f4849a9", None)
    assert (other.size, other.md5, other.sha256) == (328757843, "fb5a50374b501bb3bac4815ee91d3135", None)
    assert clean.extracts_to == "LibriSpeech/test-clean" and other.extracts_to == "LibriSpeech/test-other"
    assert clean.digest_name == "md5 (sha256 unknown)"
    checks = {c.target[0]: c.count for c in specs["librispeech-test-clean"].checks}
    assert checks["LibriSpeech/test-clean/*/*/*.flac"] == 2620
    assert {c.target[0]: c.count for c in specs["librispeech-test-other"].checks}[
        "LibriSpeech/test-other/*/*/*.flac"] == 2939
    manual = {"voxpopuli-en", "commonvoice-en", "spoken-storycloze", "slm21", "llama-questions", "webquestions",
              "triviaqa", "seed-tts-eval"}
    assert manual <= set(specs)
    for name in manual:
        assert not specs[name].downloadable and specs[name].manual and specs[name].layout


def test_bundled_manifest_names_no_other_host():
    text = catalog.DEFAULT_CATALOG.read_text()
    urls = re.findall(r"[a-z][a-z0-9+.-]*://[^\s\"']+", text)
    assert urls and {re.match(r"https://([^/]+)/", u).group(1) for u in urls} == {"www.openslr.org"}
    # and no bare host names in the prose either (domain-like words)
    assert not re.findall(r"\b[\w-]+\.(?:com|org|net|io|co|ai|edu)\b", re.sub(r"https://www\.openslr\.org/", "", text))


def test_bundled_librispeech_verify_counts(tmp_path):
    root = tmp_path / "root"
    folder = root / "LibriSpeech" / "test-clean" / "1" / "2"
    folder.mkdir(parents=True)
    (folder / "1-2-0000.flac").write_bytes(b"fLaC")
    (folder / "1-2.trans.txt").write_text("1-2-0000 HELLO\n")
    report = verify.verify_dataset("librispeech-test-clean", root)
    assert not report.ok
    assert any("1 flac files (expected 2620)" in f for f in report.failures)


def test_manifest_from_env(monkeypatch, tmp_path):
    path = write_manifest(tmp_path / "env.json", {"only": {"folder": "O", "manual": "ask", "layout": ["O/x"]}})
    monkeypatch.setenv(catalog.CATALOG_ENV, str(path))
    assert list(catalog.load_catalog()) == ["only"]
    with pytest.raises(catalog.DatasetDownloadError, match="unknown dataset 'onyl'; did you mean only"):
        catalog.get_dataset("onyl")


def test_manifest_rejects_bad_entries(tmp_path):
    bad = write_manifest(tmp_path / "bad.json", {"b": {"folder": "B", "archives": [
        {"url": "https://example.invalid/x", "file": "x.tgz", "extracts_to": "../B"}]}})
    with pytest.raises(catalog.DatasetDownloadError, match="relative path without"):
        catalog.load_catalog(bad)
    bad = write_manifest(tmp_path / "bad2.json", {"b": {"folder": "B", "archives": [
        {"url": "https://example.invalid/x", "file": "x.tgz", "extracts_to": "B", "md5": "nothex"}]}})
    with pytest.raises(catalog.DatasetDownloadError, match="not a md5 hex digest"):
        catalog.load_catalog(bad)


# ---------------------------------------------------------------------------------------------------------------------
# The CLI


def test_cli_download_verify_list(libri, tmp_path):
    _, manifest = libri
    root = tmp_path / "data"
    runner = CliRunner()
    env = {catalog.CATALOG_ENV: str(manifest)}
    res = runner.invoke(data_app, ["download", "mini-libri", "--root", str(root)], env=env)  # with the rich bar
    assert res.exit_code == 0, res.output
    assert "size and md5 (sha256 unknown) verified" in res.output and "extracted to" in res.output
    res = runner.invoke(data_app, ["verify", "mini-libri", "--root", str(root)], env=env)
    assert res.exit_code == 0, res.output
    assert "mini-libri: ok" in res.output
    res = runner.invoke(data_app, ["list", "--root", str(root)], env=env)
    assert res.exit_code == 0 and "mini-libri" in res.output and "present" in res.output
    res = runner.invoke(data_app, ["download", "mini-libri", "--root", str(root), "--no-progress"], env=env)
    assert res.exit_code == 0 and "already in place" in res.output


def test_cli_errors_exit_2_with_one_line(tmp_path, server):
    runner = CliRunner()
    data = make_tar([("Evil/data/ok.txt", b"ok"), ("../evil.txt", b"pwned")])
    server.files["/evil.tar.gz"] = data
    manifest = write_manifest(tmp_path / "m.json", {"evil": {
        "folder": "Evil/data", "archives": [archive_entry(server.url + "/evil.tar.gz", data, "Evil/data")]}})
    res = runner.invoke(data_app, ["download", "evil", "--root", str(tmp_path / "r"), "--no-progress",
                                   "--manifest", str(manifest)])
    assert res.exit_code == 2
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert errors == ["error: data.tar.gz: member '../evil.txt' refused: '..' component"]
    res = runner.invoke(data_app, ["verify", "evil", "--root", str(tmp_path / "nowhere"), "--manifest", str(manifest)])
    assert res.exit_code == 2 and "folder not found" in res.output
    res = runner.invoke(data_app, ["download", "nope", "--root", str(tmp_path), "--manifest", str(manifest)])
    assert res.exit_code == 2 and "unknown dataset 'nope'" in res.output


def test_cli_root_that_is_a_file_exit_2_with_one_line(libri, tmp_path, server):
    _, manifest = libri
    a_file = tmp_path / "data.txt"
    a_file.write_text("not a folder")
    env = {catalog.CATALOG_ENV: str(manifest)}
    for root, why in ((a_file, "not a directory"), (a_file / "sub", f"{a_file} is not a directory")):
        for args in (["download", "mini-libri", "--no-progress"], ["verify", "mini-libri"], ["list"]):
            res = CliRunner().invoke(data_app, [*args, "--root", str(root)], env=env)
            assert res.exit_code == 2, (args, res.output)
            assert res.stderr.strip().splitlines() == [f"error: --root {root}: {why}"], (args, res.stderr)
            assert res.exception is None or isinstance(res.exception, SystemExit)
    assert a_file.read_text() == "not a folder" and server.requests == []  # refused before any download


def test_cli_manual_dataset_prints_instructions(tmp_path):
    res = CliRunner().invoke(data_app, ["download", "webquestions", "--root", str(tmp_path)])
    assert res.exit_code == 2
    assert "Where to get it:" in res.output and f"{tmp_path}/webquestions/test.jsonl" in res.output
    assert "error: webquestions: no single public archive to download" in res.output
    (tmp_path / "webquestions").mkdir()
    (tmp_path / "webquestions" / "test.jsonl").write_text('{"question": "q", "answers": ["a"], "audio": "1.wav"}\n')
    res = CliRunner().invoke(data_app, ["verify", "webquestions", "--root", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "about 2032 expected, unconfirmed" in res.output
