"""Kaggle download of fer2013.csv: credential detection and errors, with the kaggle package faked
(there is no network in tests, and the real package authenticates when imported)."""

from __future__ import annotations

import io
import sys
import tarfile
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ganaug.data.download import kaggle_credentials
from ganaug.data.fer2013_csv import KAGGLE_COMPETITION
from ganaug.data.prepare import DATASET_KINDS, parse_dataset_config
from ganaug.io import DataFileError

SECRET = "0123456789abcdef-not-a-real-key"


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    """A home folder without kaggle.json and no Kaggle variables in the environment."""
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR",
                "XDG_CONFIG_HOME"):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def load_with_download(path: Path):
    cfg = parse_dataset_config("fer", {"kind": "fer2013_csv", "path": str(path),
                                       "download": "kaggle"})
    return DATASET_KINDS["fer2013_csv"].load(cfg)


def test_credentials_none(no_credentials):
    assert kaggle_credentials() is None


def test_credentials_from_environment_name_the_variables_not_the_key(no_credentials, monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", SECRET)
    found = kaggle_credentials()
    assert "KAGGLE_USERNAME" in found and SECRET not in found and "someone" not in found


def test_credentials_from_kaggle_json(no_credentials, monkeypatch, tmp_path):
    (no_credentials / ".kaggle").mkdir()
    (no_credentials / ".kaggle" / "kaggle.json").write_text(f'{{"username": "u", "key": "{SECRET}"}}')
    assert kaggle_credentials() == str(no_credentials / ".kaggle" / "kaggle.json")
    config_dir = tmp_path / "elsewhere"
    config_dir.mkdir()
    (config_dir / "kaggle.json").write_text("{}")
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(config_dir))
    assert kaggle_credentials() == str(config_dir / "kaggle.json")


def test_download_without_credentials_says_what_to_do(no_credentials, tmp_path):
    dest = tmp_path / "raw" / "fer2013.csv"
    with pytest.raises(DataFileError) as exc:
        load_with_download(dest)
    msg = str(exc.value)
    assert str(dest) in msg and "no Kaggle credentials" in msg
    assert "~/.kaggle/kaggle.json" in msg and "KAGGLE_USERNAME" in msg and "KAGGLE_KEY" in msg
    assert not dest.exists()


def test_download_without_the_kaggle_package_says_pip_install(no_credentials, monkeypatch, tmp_path):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", SECRET)
    monkeypatch.setitem(sys.modules, "kaggle", None)  # makes `import kaggle...` fail
    with pytest.raises(DataFileError, match="pip install kaggle") as exc:
        load_with_download(tmp_path / "fer2013.csv")
    assert SECRET not in str(exc.value)


def fer_csv_bytes() -> bytes:
    rng = np.random.default_rng(0)
    rows = [f"{k % 7},{' '.join(map(str, rng.integers(0, 256, 2304)))},{u}"
            for k, u in enumerate(["Training"] * 3 + ["PublicTest", "PrivateTest"])]
    return ("emotion,pixels,Usage\n" + "\n".join(rows) + "\n").encode()


def fake_kaggle(monkeypatch, download) -> list:
    """Install a fake ``kaggle.api.kaggle_api_extended.KaggleApi`` whose download calls ``download``."""
    calls: list = []

    class KaggleApi:
        def authenticate(self):
            calls.append("authenticate")

        def competition_download_file(self, competition, file_name, path=None, quiet=False):
            calls.append((competition, file_name))
            download(Path(path), file_name)

    ext = types.ModuleType("kaggle.api.kaggle_api_extended")
    ext.KaggleApi = KaggleApi
    for name, module in (("kaggle", types.ModuleType("kaggle")),
                         ("kaggle.api", types.ModuleType("kaggle.api")),
                         ("kaggle.api.kaggle_api_extended", ext)):
        monkeypatch.setitem(sys.modules, name, module)
    return calls


def write_zipped_tarball(folder: Path, file_name: str) -> None:
    """What Kaggle serves: fer2013.tar.gz (fer2013/fer2013.csv inside), possibly zipped again."""
    data = fer_csv_bytes()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("fer2013/fer2013.csv")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with zipfile.ZipFile(folder / f"{file_name}.zip", "w") as z:
        z.writestr(file_name, buf.getvalue())


def test_download_with_a_fake_kaggle_unpacks_and_places_the_csv(no_credentials, monkeypatch,
                                                                tmp_path):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", SECRET)
    calls = fake_kaggle(monkeypatch, write_zipped_tarball)
    dest = tmp_path / "raw" / "fer2013.csv"
    raw = load_with_download(dest)
    assert calls == ["authenticate", (KAGGLE_COMPETITION, "fer2013.tar.gz")]
    assert dest.read_bytes() == fer_csv_bytes()
    assert raw.split.tolist() == ["train"] * 3 + ["val", "test"]
    assert sorted(p.name for p in dest.parent.iterdir()) == ["fer2013.csv"]  # no temp leftovers


def test_download_failure_names_the_competition_and_leaves_nothing(no_credentials, monkeypatch,
                                                                 tmp_path):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", SECRET)

    def forbidden(folder: Path, file_name: str) -> None:
        (folder / "partial.bin").write_bytes(b"half")
        raise RuntimeError("(403)\nReason: Forbidden")

    fake_kaggle(monkeypatch, forbidden)
    dest = tmp_path / "raw" / "fer2013.csv"
    with pytest.raises(DataFileError) as exc:
        load_with_download(dest)
    msg = str(exc.value)
    assert KAGGLE_COMPETITION in msg and "rules" in msg and "(403)" in msg and SECRET not in msg
    assert not dest.exists() and not list(dest.parent.iterdir())
