"""External files: fetched (or found in torch's hub cache), checked against a sha256, written
atomically; offline and mismatch errors say what to do. Everything here is local (file:// URLs, a
replaced downloader, or an HTTP server on 127.0.0.1 that the test starts): no test touches the
network."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
import urllib.error
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

import ganaug.external as external
from ganaug.config import ParamsError, parse
from ganaug.external import (
    ExternalFileError,
    ExternalFileUnavailable,
    FetchConfig,
    check_digest_spec,
    digest_matches,
    fetch_file,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
NAME = "weights-2015-12-05-abc.pth"
CONTENT = b"pretend these are weights\n" * 1000
DIGEST = hashlib.sha256(CONTENT).hexdigest()
REMOTE = "https://example.invalid/releases/" + NAME


@pytest.fixture
def remote(tmp_path) -> Path:
    """A file served by a file:// URL."""
    path = tmp_path / "remote" / NAME
    path.parent.mkdir()
    path.write_bytes(CONTENT)
    return path


@pytest.fixture
def no_download(monkeypatch):
    def refuse(url, dst, *args, **kwargs):
        raise AssertionError(f"unexpected download of {url}")

    monkeypatch.setattr(external, "download_to_file", refuse)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ------------------------------------------------------------------------------------------
# Digests
# ------------------------------------------------------------------------------------------


def test_digest_spec_accepts_full_digests_and_prefixes_of_8_or_more():
    assert check_digest_spec(DIGEST.upper()) == DIGEST
    assert check_digest_spec(DIGEST[:8]) == DIGEST[:8]
    for bad in ("", DIGEST[:7], DIGEST + "0", "z" * 64, "6726825d "):
        with pytest.raises(ValueError, match="sha256"):
            check_digest_spec(bad)


def test_digest_matches_full_digest_or_prefix():
    assert digest_matches(DIGEST, DIGEST)
    assert digest_matches(DIGEST, DIGEST[:8].upper())
    assert not digest_matches(DIGEST, DIGEST[1:9])
    assert not digest_matches(DIGEST, "0" * 64)


def test_fetch_config_is_strict_and_names_the_key():
    cfg = parse(FetchConfig, {"url": REMOTE, "sha256": DIGEST}, "fetch.inception")
    assert (cfg.url, cfg.sha256) == (REMOTE, DIGEST)
    with pytest.raises(ParamsError, match=r"fetch.inception.md5: unknown key"):
        parse(FetchConfig, {"url": REMOTE, "sha256": DIGEST, "md5": "x"}, "fetch.inception")
    with pytest.raises(ParamsError, match=r"fetch.inception.sha256"):
        parse(FetchConfig, {"url": REMOTE, "sha256": 1234}, "fetch.inception")
    with pytest.raises(ParamsError, match=r"fetch.inception: .*prefix of at least 8"):
        parse(FetchConfig, {"url": REMOTE, "sha256": "abc"}, "fetch.inception")
    with pytest.raises(ParamsError, match=r"fetch.inception: url"):
        parse(FetchConfig, {"url": "https://example.invalid/", "sha256": DIGEST}, "fetch.inception")


# ------------------------------------------------------------------------------------------
# fetch_file
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("digest", [DIGEST, DIGEST[:8]], ids=["full", "prefix"])
def test_download_is_verified_and_written(tmp_path, remote, digest):
    dest = tmp_path / "models" / "external" / "w.pth"
    assert fetch_file("w", remote.as_uri(), digest, dest, search_dirs=[tmp_path / "cache"]) == dest
    assert dest.read_bytes() == CONTENT
    assert leftovers(dest.parent) == ["w.pth"]


def test_a_file_in_a_search_dir_is_used_without_download(tmp_path, no_download):
    first, second = tmp_path / "first", tmp_path / "second"
    second.mkdir()
    (second / NAME).write_bytes(CONTENT)
    dest = tmp_path / "out" / "w.pth"
    fetch_file("w", REMOTE, DIGEST, dest, search_dirs=[first, second])
    assert dest.read_bytes() == CONTENT
    assert (second / NAME).read_bytes() == CONTENT  # copied, not moved


def test_the_default_search_dir_is_torch_hub_checkpoints(tmp_path, monkeypatch, no_download):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / NAME).write_bytes(CONTENT)
    fetch_file("w", REMOTE, DIGEST, tmp_path / "w.pth")
    assert (tmp_path / "w.pth").read_bytes() == CONTENT


@pytest.mark.parametrize("found_locally", [False, True], ids=["downloaded", "search-dir"])
def test_a_digest_mismatch_names_the_file_and_both_digests_and_writes_nothing(
        tmp_path, remote, found_locally):
    wrong = "0" * 64
    cache = tmp_path / "cache"
    if found_locally:
        cache.mkdir()
        (cache / NAME).write_bytes(CONTENT)
    dest = tmp_path / "out" / "w.pth"
    with pytest.raises(ExternalFileError, match="sha256 mismatch") as err:
        fetch_file("w", remote.as_uri(), wrong, dest, search_dirs=[cache])
    assert NAME in str(err.value) and wrong in str(err.value) and DIGEST in str(err.value)
    assert leftovers(dest.parent) == []


def test_a_mismatch_leaves_an_existing_dest_untouched(tmp_path, remote):
    dest = tmp_path / "w.pth"
    dest.write_bytes(b"old")
    with pytest.raises(ExternalFileError):
        fetch_file("w", remote.as_uri(), "f" * 64, dest, search_dirs=[])
    assert dest.read_bytes() == b"old"
    assert leftovers(tmp_path) == ["remote", "w.pth"]


@pytest.mark.parametrize("error", [
    urllib.error.URLError("[Errno -3] Temporary failure in name resolution"),
    TimeoutError("timed out"),
    ConnectionResetError("connection reset by peer"),
    urllib.error.HTTPError(REMOTE, 404, "Not Found", None, None),
], ids=["urlerror", "timeout", "reset", "http404"])
def test_offline_says_where_to_place_the_file(tmp_path, monkeypatch, error):
    def fail(url, dst, *args, **kwargs):
        Path(dst).write_bytes(b"partial")  # a half-written file must not survive
        raise error

    monkeypatch.setattr(external, "download_to_file", fail)
    dirs = [tmp_path / "hub" / "checkpoints", tmp_path / "elsewhere"]
    dest = tmp_path / "out" / "w.pth"
    with pytest.raises(ExternalFileUnavailable) as err:
        fetch_file("inception", REMOTE, DIGEST, dest, search_dirs=dirs)
    msg = str(err.value)
    assert isinstance(err.value, ValueError)
    for part in ("inception", REMOTE, NAME, str(dirs[0]), str(dirs[1]), DIGEST, "sha256"):
        assert part in msg, part
    assert leftovers(dest.parent) == []


def test_a_server_that_never_answers_times_out_and_leaves_nothing(tmp_path, monkeypatch):
    """A listening socket that accepts connections and never sends a byte: the download gives
    up after the timeout, with the message that says where to place the file."""
    import socket
    import time

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    monkeypatch.setenv("GANAUG_DOWNLOAD_TIMEOUT", "1")
    dest = tmp_path / "out" / "w.pth"
    start = time.monotonic()
    try:
        with pytest.raises(ExternalFileUnavailable, match="timed out"):
            fetch_file("w", f"http://127.0.0.1:{port}/{NAME}", DIGEST, dest,
                       search_dirs=[tmp_path / "cache"])
    finally:
        server.close()
    assert time.monotonic() - start < 30
    assert leftovers(dest.parent) == []


# ------------------------------------------------------------------------------------------
# Over HTTP (pooch's HTTPDownloader), against a server on 127.0.0.1
# ------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    """/releases/: the file; /redirect/: a 302 to it (GitHub's release URLs redirect);
    /missing/: 404; /truncated/: half the promised bytes, then the connection closes;
    /stall/: half the promised bytes, then silence until the test ends."""

    stall: threading.Event

    def do_GET(self):  # noqa: N802 (http.server's name)
        route = self.path.split("/")[1]
        if route == "redirect":
            self.send_response(302)
            self.send_header("Location", self.path.replace("/redirect/", "/releases/", 1))
            self.end_headers()
            return
        if route not in ("releases", "truncated", "stall"):
            self.send_error(404, "Not Found")
            return
        # The stalled body is larger than the 1 MiB chunks that the download writes, so that
        # part of it reaches the disk before the silence.
        body = CONTENT * 150 if route == "stall" else CONTENT
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if route == "releases":
            self.wfile.write(body)
            return
        self.wfile.write(body[: len(body) // 2])
        self.wfile.flush()
        if route == "stall":
            self.stall.wait(60)

    def log_message(self, *args):  # keep pytest's output clean
        pass


@pytest.fixture
def http_url():
    """Base URL of a local HTTP server (see _Handler for its routes)."""
    handler = type("Handler", (_Handler,), {"stall": threading.Event()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    handler.stall.set()
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("route", ["releases", "redirect"])
@pytest.mark.parametrize("digest", [DIGEST, DIGEST[:8]], ids=["full", "prefix"])
def test_an_http_download_is_verified_and_written(tmp_path, http_url, route, digest):
    dest = tmp_path / "out" / "w.pth"
    fetch_file("w", f"{http_url}/{route}/{NAME}", digest, dest, search_dirs=[tmp_path / "cache"])
    assert dest.read_bytes() == CONTENT
    assert leftovers(dest.parent) == ["w.pth"]  # pooch's temporary file and folder are gone


@pytest.mark.parametrize("digest", ["0" * 64, "0" * 8], ids=["full", "prefix"])
def test_an_http_digest_mismatch_is_one_line_naming_url_and_both_digests(
        tmp_path, http_url, digest):
    url = f"{http_url}/releases/{NAME}"
    dest = tmp_path / "out" / "w.pth"
    with pytest.raises(ExternalFileError, match="sha256 mismatch") as err:
        fetch_file("w", url, digest, dest, search_dirs=[])
    msg = str(err.value)
    assert "\n" not in msg
    assert not isinstance(err.value, ExternalFileUnavailable)
    for part in (url, NAME, digest, DIGEST):
        assert part in msg, part
    assert leftovers(dest.parent) == []


@pytest.mark.parametrize("route, says", [
    ("missing", "404"),
    ("truncated", "IncompleteRead"),
], ids=["http404", "truncated"])
def test_http_errors_say_where_to_place_the_file(tmp_path, http_url, route, says):
    url = f"{http_url}/{route}/{NAME}"
    dirs = [tmp_path / "cache"]
    dest = tmp_path / "out" / "w.pth"
    with pytest.raises(ExternalFileUnavailable) as err:
        fetch_file("w", url, DIGEST, dest, search_dirs=dirs)
    msg = str(err.value)
    for part in (says, url, NAME, str(dirs[0]), DIGEST):
        assert part in msg, part
    assert leftovers(dest.parent) == []


def test_a_refused_connection_says_where_to_place_the_file(tmp_path):
    import socket

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/releases/{NAME}"
    dest = tmp_path / "out" / "w.pth"
    with pytest.raises(ExternalFileUnavailable, match="Connection refused") as err:
        fetch_file("w", url, DIGEST, dest, search_dirs=[tmp_path / "cache"])
    assert url in str(err.value) and str(tmp_path / "cache") in str(err.value)
    assert leftovers(dest.parent) == []


@pytest.mark.parametrize("url", [f"ftp://127.0.0.1/{NAME}", f"s3://bucket/{NAME}", NAME])
def test_a_url_scheme_other_than_http_or_file_is_refused_before_any_transfer(
        tmp_path, no_download, url):
    with pytest.raises(ValueError, match=r"url: expected an http\(s\):// or file:// URL"):
        fetch_file("w", url, DIGEST, tmp_path / "w.pth", search_dirs=[])
    assert leftovers(tmp_path) == []


def test_a_download_killed_midway_leaves_no_dest_and_the_next_fetch_cleans_up(
        tmp_path, http_url):
    """pooch writes to a temporary file and moves it only when complete; a SIGKILL mid-transfer
    leaves that temporary file in the private staging folder, never at ``dest``, and the next
    fetch of ``dest`` removes the folder."""
    out = tmp_path / "out"
    dest = out / "w.pth"
    code = ("import sys; from ganaug.external import fetch_file; "
            "fetch_file('w', sys.argv[1], sys.argv[2], sys.argv[3], search_dirs=[])")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "src"), GANAUG_DOWNLOAD_TIMEOUT="60")
    proc = subprocess.Popen([sys.executable, "-c", code, f"{http_url}/stall/{NAME}", DIGEST,
                             str(dest)], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not any(p.is_file() and p.stat().st_size > 0 for p in out.glob(".w.pth.*.tmp/*")):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the download never started"
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    assert not dest.exists()
    assert [p.name.startswith(".w.pth.") for p in out.iterdir()] == [True]
    fetch_file("w", f"{http_url}/releases/{NAME}", DIGEST, dest, search_dirs=[])
    assert dest.read_bytes() == CONTENT
    assert leftovers(out) == ["w.pth"]


# ------------------------------------------------------------------------------------------
# The stage, through its real entry point
# ------------------------------------------------------------------------------------------


def run_fetch(tmp_path: Path, url: str, digest: str, *extra: str) -> subprocess.CompletedProcess:
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"fetch": {"inception": {"url": url, "sha256": digest}}}))
    env = dict(os.environ, TORCH_HOME=str(tmp_path / "torch"))  # an empty hub cache
    return subprocess.run(
        [sys.executable, "-m", "stages.fetch", "--name", "inception", "--out",
         str(tmp_path / "models" / "inception.pth"), "--params", str(params), *extra],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_stage_fetches_a_file_url(tmp_path, remote):
    proc = run_fetch(tmp_path, remote.as_uri(), DIGEST)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "models" / "inception.pth").read_bytes() == CONTENT


def test_stage_fetches_over_http_and_logs_in_its_own_words(tmp_path, http_url):
    proc = run_fetch(tmp_path, f"{http_url}/redirect/{NAME}", DIGEST)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "models" / "inception.pth").read_bytes() == CONTENT
    assert "known_hash" not in proc.stderr  # pooch's advice to its own users is hushed


def test_stage_fails_cleanly_on_a_digest_mismatch(tmp_path, remote):
    proc = run_fetch(tmp_path, remote.as_uri(), "0" * 64)
    assert proc.returncode == 1
    assert NAME in proc.stderr and "sha256 mismatch" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert leftovers(tmp_path / "models") == []


def test_stage_declares_its_params_section():
    from stages import fetch

    args = fetch.build_parser().parse_args(["--name", "inception", "--out", "x.pth"])
    assert fetch.declared_params(args) == ["fetch.inception"]
