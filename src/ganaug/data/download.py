"""Optional downloads from Kaggle (the ``kaggle`` package, imported only when a download runs).

Credentials are looked for where the kaggle package looks (``KAGGLE_USERNAME``/``KAGGLE_KEY`` or
``KAGGLE_API_TOKEN`` in the environment, or a ``kaggle.json`` in ``$KAGGLE_CONFIG_DIR``,
``~/.kaggle`` or ``~/.config/kaggle``); only *where* they were found is ever reported, never their
content. Nothing here runs at import time.
"""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from ganaug.io import DataFileError, atomic_path

log = logging.getLogger(__name__)

CREDENTIALS_HELP = (
    "create an API token on https://www.kaggle.com/settings (Account -> API -> Create New Token) "
    "and save it as ~/.kaggle/kaggle.json (chmod 600), or set the environment variables "
    "KAGGLE_USERNAME and KAGGLE_KEY"
)


def kaggle_config_files() -> list[Path]:
    """The ``kaggle.json`` locations the kaggle package reads, in its order of preference."""
    dirs = []
    if os.environ.get("KAGGLE_CONFIG_DIR"):
        dirs.append(Path(os.environ["KAGGLE_CONFIG_DIR"]))
    dirs.append(Path.home() / ".kaggle")
    dirs.append(Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "kaggle")
    return [d / "kaggle.json" for d in dirs]


def kaggle_credentials() -> str | None:
    """Describe where Kaggle credentials are (never what they are), or None when there are none."""
    env = os.environ
    if env.get("KAGGLE_USERNAME") and env.get("KAGGLE_KEY"):
        return "environment variables KAGGLE_USERNAME and KAGGLE_KEY"
    if env.get("KAGGLE_API_TOKEN"):
        return "environment variable KAGGLE_API_TOKEN"
    for path in kaggle_config_files():
        if path.is_file():
            return str(path)
    return None


def download_competition_file(competition: str, file_name: str, member: str, dest: Path) -> None:
    """Download ``file_name`` of a Kaggle competition and put its ``member`` file at ``dest``.

    ``file_name`` may be an archive (zip, tar, tar.gz; Kaggle may zip it again); ``member`` is the
    base name of the file wanted inside it. ``dest`` appears atomically or not at all.
    """
    where = kaggle_credentials()
    if where is None:
        raise DataFileError(
            f"{dest}: cannot download {file_name} from Kaggle: no Kaggle credentials found; "
            f"{CREDENTIALS_HELP}. Or download it by hand and put {member} at {dest}."
        )
    api = _kaggle_api(where)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".kaggle-", dir=dest.parent) as tmp:
        log.info("downloading %s from Kaggle competition %s", file_name, competition)
        try:
            api.competition_download_file(competition, file_name, path=tmp, quiet=True)
        except Exception as exc:  # the kaggle client raises its own HTTP/API error types
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise DataFileError(
                f"{dest}: downloading {file_name} from Kaggle competition {competition!r} failed "
                f"({type(exc).__name__}: {first_line}). Check the network, and accept the "
                f"competition's rules at https://www.kaggle.com/c/{competition}/rules"
            ) from None
        found = _find_member(Path(tmp), member)
        with atomic_path(dest) as out:
            shutil.move(str(found), out)
    log.info("wrote %s", dest)


def _kaggle_api(where: str) -> Any:
    try:
        # Importing the package authenticates at once (and fails without credentials).
        from kaggle.api.kaggle_api_extended import KaggleApi
    except ImportError:
        raise DataFileError(
            "download: kaggle needs the kaggle package, which is not installed: "
            "pip install kaggle (or download the file by hand)"
        ) from None
    except (OSError, ValueError) as exc:
        raise DataFileError(
            f"Kaggle authentication with the credentials in {where} failed ({type(exc).__name__})"
        ) from None
    api = KaggleApi()
    try:
        api.authenticate()
    except (OSError, ValueError) as exc:
        raise DataFileError(
            f"Kaggle authentication with the credentials in {where} failed ({type(exc).__name__})"
        ) from None
    return api


def _find_member(folder: Path, member: str) -> Path:
    """Unpack every archive under ``folder`` (repeatedly, Kaggle nests them), then find ``member``."""
    unpacked: set[Path] = set()
    while True:
        archives = [p for p in sorted(folder.rglob("*")) if p.is_file() and p not in unpacked
                    and p.name != member and _is_archive(p)]
        if not archives:
            break
        for arc in archives:
            _unpack(arc, arc.parent / f"{arc.name}.d")
            unpacked.add(arc)
    hits = sorted(p for p in folder.rglob(member) if p.is_file())
    if not hits:
        got = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        raise DataFileError(f"the Kaggle download holds no {member}; it holds {got}")
    return hits[0]


def _is_archive(path: Path) -> bool:
    return zipfile.is_zipfile(path) or tarfile.is_tarfile(path)


def _unpack(archive: Path, into: Path) -> None:
    into.mkdir()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            z.extractall(into)
    else:
        with tarfile.open(archive) as t:
            t.extractall(into, filter="data")  # refuses absolute paths and links out of `into`
