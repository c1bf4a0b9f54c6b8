"""External files the pipeline needs but does not make (pretrained weights): fetched once by the
``fetch`` stage, checked against a sha256 digest, and written where ``dvc.yaml`` tracks them.

A copy already in torch's hub cache (where pytorch-fid, torch-fidelity and torchvision keep their
downloads) is used before the network, so a machine that ran pytorch-fid once needs no download,
and an offline machine needs only the file placed there by hand. Nothing runs at import time.

The transfer and the hash check are pooch's (``pooch.retrieve`` with ``pooch.HTTPDownloader``):
pooch streams into a temporary file, checks the digest, and only then moves the file into place.
Three things pooch does not do are done here, around it:

- a digest given as a prefix (8 to 63 hex digits, torch.hub's convention) is checked here after
  pooch's transfer, because pooch compares whole digests only; full digests are pooch's check;
- ``file://`` URLs and the search directories are copied by a downloader of ours handed to pooch
  (pooch has no ``file://`` downloader), and pooch has no notion of several cache directories;
- pooch's temporary file sits next to its target and a kill leaves it there, so pooch works in a
  private folder named like :func:`ganaug.io.atomic_path`'s temporaries, and the next fetch of
  the same destination removes what a killed run left.
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from pydantic.dataclasses import dataclass

from ganaug.io import DataFileError, atomic_path
from ganaug.params import STRICT

log = logging.getLogger(__name__)

_DIGEST = re.compile(r"[0-9a-f]{8,64}")
_CHUNK = 1 << 20


class ExternalFileError(DataFileError):
    """An external file does not have the expected sha256 digest, or could not be fetched."""


class ExternalFileUnavailable(ExternalFileError):
    """An external file is in no search directory and cannot be downloaded (offline, HTTP error)."""


@dataclass(config=STRICT, frozen=True)
class FetchConfig:
    """Params section ``fetch.<name>``: where an external file comes from and its digest.

    ``sha256`` is the full 64-hex digest, or (torch.hub's ``check_hash`` convention) a prefix of
    at least 8 hex digits of it.
    """

    url: str
    sha256: str

    def __post_init__(self) -> None:
        check_digest_spec(self.sha256, "sha256")
        url_file_name(self.url)


def check_digest_spec(digest: str, key: str = "sha256") -> str:
    """Return ``digest`` lower-cased; raise ValueError unless it is 8 to 64 hex digits."""
    if not _DIGEST.fullmatch(digest.lower()):
        raise ValueError(
            f"{key}: expected a sha256 digest (64 hex digits) or a prefix of at least 8 hex "
            f"digits, got {digest!r}"
        )
    return digest.lower()


def url_file_name(url: str) -> str:
    """The file name at the end of an http(s) or file URL's path; ValueError if there is none."""
    parsed = urlparse(url)
    name = Path(parsed.path).name
    if parsed.scheme not in ("http", "https", "file") or not name:
        raise ValueError(f"url: expected an http(s):// or file:// URL ending in a file name, got {url!r}")
    return name


def sha256_file(path: str | Path) -> str:
    """The hex sha256 digest of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def digest_matches(actual: str, expected: str) -> bool:
    """True when the full digest ``actual`` equals ``expected`` or starts with it (a prefix)."""
    return actual.lower().startswith(check_digest_spec(expected))


def default_search_dirs() -> list[Path]:
    """torch's hub checkpoint cache (``$TORCH_HOME/hub/checkpoints``, by default
    ``~/.cache/torch/hub/checkpoints``): where pytorch-fid and torchvision keep their downloads."""
    import torch.hub

    return [Path(torch.hub.get_dir()) / "checkpoints"]


def fetch_file(name: str, url: str, sha256: str, dest: str | Path,
               search_dirs: Sequence[str | Path] | None = None) -> Path:
    """Put the file at ``url`` at ``dest``, checked against ``sha256``; returns ``dest``.

    A file named like the URL's last path component in one of ``search_dirs`` (default:
    :func:`default_search_dirs`) is copied instead of downloading. ``name`` (e.g. ``inception``)
    only labels messages. ``dest`` appears atomically, and only with the right digest.

    Raises ExternalFileError on a digest mismatch (naming the file and both digests) and
    ExternalFileUnavailable when the file is in no search directory and cannot be downloaded.
    """
    expected = check_digest_spec(sha256)
    file_name = url_file_name(url)
    dirs = [Path(d) for d in (default_search_dirs() if search_dirs is None else search_dirs)]
    dest = Path(dest)
    local = next((d / file_name for d in dirs if (d / file_name).is_file()), None)
    with atomic_path(dest) as tmp, _staging_dir(dest) as stage:
        if local is not None:
            log.info("%s: using %s (found locally; no download)", name, local)
            got = _retrieve(local.as_uri(), expected, file_name, stage, _copy_file_url,
                            f"{name}: {local}")
        else:
            log.info("%s: downloading %s", name, url)
            try:
                # Looked up at call time, so that tests can replace the transfer.
                got = _retrieve(url, expected, file_name, stage,
                                lambda u, dst: download_to_file(u, dst),
                                f"{name}: {file_name} downloaded from {url}")
            except (OSError, http.client.HTTPException) as exc:
                raise _unavailable(name, url, file_name, expected, dirs, exc) from None
        os.replace(got, tmp)
    log.info("%s: wrote %s (sha256 verified)", name, dest)
    return dest


@contextlib.contextmanager
def _staging_dir(dest: Path) -> Iterator[Path]:
    """A private folder next to ``dest`` for pooch to download into, removed afterwards.

    Named ``.<dest name>.XXXXXXXX.tmp`` like atomic_path's temporaries, so the folder (and pooch's
    half-written temporary file in it) that a killed run leaves is removed by the next
    ``atomic_path(dest)``, i.e. the next fetch of ``dest``.
    """
    stage = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _retrieve(source: str, expected: str, file_name: str, stage: Path,
              transfer: Callable[[str, Path], None], what: str) -> Path:
    """pooch.retrieve ``source`` into ``stage / file_name``, checked against ``expected``.

    A digest mismatch is an ExternalFileError naming ``what`` and both digests. Transfer errors
    (OSError, requests' errors, which are OSErrors) propagate for the caller to explain.
    """
    import pooch

    actual: list[str] = []

    def downloader(url: str, output_file: str, _pooch: object) -> None:
        transfer(url, Path(output_file))
        # pooch's mismatch error does not hand back the digest; the message names it.
        actual.append(sha256_file(output_file))

    # pooch compares whole digests: a prefix is checked below instead.
    known_hash = f"sha256:{expected}" if len(expected) == 64 else None
    try:
        with _quiet_pooch():
            got = Path(pooch.retrieve(source, known_hash, fname=file_name, path=stage,
                                      downloader=downloader))
    except ValueError:
        if actual:
            _check(actual[0], expected, what)
        raise
    _check(actual[0], expected, what)
    return got


@contextlib.contextmanager
def _quiet_pooch() -> Iterator[None]:
    """Hush pooch's own INFO lines ("Downloading data from ...", "use this value as known_hash")
    while it works: this module logs what happens, in its own words."""
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _check(actual: str, expected: str, what: str) -> None:
    if not digest_matches(actual, expected):
        raise ExternalFileError(
            f"{what}: sha256 mismatch: expected {expected}, got {actual}. The file is corrupt, "
            f"truncated or a different version; delete it and fetch it again"
        )


# Seconds a connection or a read may wait before the download is given up (a server that never
# answers must not hang the stage). GANAUG_DOWNLOAD_TIMEOUT overrides it.
DOWNLOAD_TIMEOUT = 60.0


def download_to_file(url: str, dst: Path, timeout: float | None = None) -> None:
    """Transfer ``url`` into ``dst``: http(s) with ``pooch.HTTPDownloader`` (requests), giving
    up when connecting or any read waits longer than ``timeout`` seconds (requests' ``Timeout``,
    an OSError), and ``file://`` by a local copy. ``dst`` is pooch's temporary file; nothing else
    is written."""
    if urlparse(url).scheme == "file":
        _copy_file_url(url, dst)
        return
    import pooch

    if timeout is None:
        timeout = float(os.environ.get("GANAUG_DOWNLOAD_TIMEOUT", DOWNLOAD_TIMEOUT))
    # pooch's default chunk is 1 KiB, written and flushed one by one: slow for 100 MB of weights.
    http_get = pooch.HTTPDownloader(progressbar=sys.stderr.isatty(), chunk_size=_CHUNK,
                                    timeout=timeout, headers={"User-Agent": "ganaug"})
    http_get(url, str(dst), None)


def _copy_file_url(url: str, dst: Path) -> None:
    """The downloader for ``file://`` URLs, which pooch has none for: a plain copy."""
    shutil.copyfile(url2pathname(urlparse(url).path), dst)


def _unavailable(name: str, url: str, file_name: str, expected: str, dirs: list[Path],
                 exc: BaseException) -> ExternalFileUnavailable:
    where = ", ".join(str(d) for d in dirs) or "(no search directories given)"
    return ExternalFileUnavailable(
        f"{name}: cannot download {url} ({type(exc).__name__}: {exc}). Offline? Download "
        f"{file_name} on a machine with network access and place it, under that exact name, "
        f"in one of these directories: {where} (torch's hub cache; set TORCH_HOME to move "
        f"it), then rerun. Its sha256 is checked against {expected} either way"
    )
