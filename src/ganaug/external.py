"""External files the pipeline needs but does not make (pretrained weights): fetched once by the
``fetch`` stage, checked against a sha256 digest, and written where ``dvc.yaml`` tracks them.

A copy already in torch's hub cache (where pytorch-fid, torch-fidelity and torchvision keep their
downloads) is used before the network, so a machine that ran pytorch-fid once needs no download,
and an offline machine needs only the file placed there by hand. Nothing runs at import time.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

from pydantic.dataclasses import dataclass

from ganaug.config import STRICT
from ganaug.io import DataFileError, atomic_path

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
    with atomic_path(dest) as tmp:
        if local is not None:
            log.info("%s: using %s (found locally; no download)", name, local)
            actual = _copy_hashing(local, tmp)
            _check(actual, expected, f"{name}: {local}")
        else:
            log.info("%s: downloading %s", name, url)
            _download(name, url, tmp, file_name, expected, dirs)
            _check(sha256_file(tmp), expected, f"{name}: {file_name} downloaded from {url}")
    log.info("%s: wrote %s (sha256 verified)", name, dest)
    return dest


def _copy_hashing(src: Path, dst: Path) -> str:
    """Copy ``src`` to ``dst`` and return the sha256 of the bytes written."""
    h = hashlib.sha256()
    with src.open("rb") as fin, dst.open("wb") as fout:
        for chunk in iter(lambda: fin.read(_CHUNK), b""):
            h.update(chunk)
            fout.write(chunk)
    return h.hexdigest()


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
    """Stream ``url`` into ``dst``, giving up when connecting or any read waits longer than
    ``timeout`` seconds (``TimeoutError``). Writes nothing else: the caller's atomic temporary
    file is the only file, so a failed or killed download leaves nothing behind."""
    import urllib.request

    from tqdm import tqdm

    if timeout is None:
        timeout = float(os.environ.get("GANAUG_DOWNLOAD_TIMEOUT", DOWNLOAD_TIMEOUT))
    request = urllib.request.Request(url, headers={"User-Agent": "ganaug"})
    with urllib.request.urlopen(request, timeout=timeout) as response, dst.open("wb") as f:
        total = response.headers.get("Content-Length")
        with tqdm(total=int(total) if total else None, unit="B", unit_scale=True,
                  disable=not sys.stderr.isatty(), desc=dst.name) as bar:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                f.write(chunk)
                bar.update(len(chunk))


def _download(name: str, url: str, dst: Path, file_name: str, expected: str,
              dirs: list[Path]) -> None:
    try:
        download_to_file(url, dst)
    except (OSError, http.client.HTTPException) as exc:  # URLError, HTTPError, socket errors
        where = ", ".join(str(d) for d in dirs) or "(no search directories given)"
        raise ExternalFileUnavailable(
            f"{name}: cannot download {url} ({type(exc).__name__}: {exc}). Offline? Download "
            f"{file_name} on a machine with network access and place it, under that exact name, "
            f"in one of these directories: {where} (torch's hub cache; set TORCH_HOME to move "
            f"it), then rerun. Its sha256 is checked against {expected} either way"
        ) from None
