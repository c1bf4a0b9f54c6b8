"""Dataset kinds that read researchers' files: fer2013_csv, image_folder, npz, torchvision.

Each format is written small in tmp_path, read back through its loader and through prepare +
save_prepared/load_prepared; malformed files give errors that name the file and the row or path.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from ganaug.config import DataConfig, ParamsError
from ganaug.data import fer2013_csv as fer_module
from ganaug.data import load_prepared, save_prepared
from ganaug.data.fer2013_csv import FER2013_CLASSES, KAGGLE_COMPETITION
from ganaug.data.prepare import DATASET_KINDS, parse_dataset_config, prepare
from ganaug.io import DataFileError

REPO_ROOT = Path(__file__).resolve().parents[1]
FER_NPZ = REPO_ROOT.parent / "shared" / "data" / "fer2013.npz"


def load(name: str, value: dict):
    """Parse ``datasets.<name>`` and run its loader: the RawDataset."""
    cfg = parse_dataset_config(name, value)
    return DATASET_KINDS[cfg.kind].load(cfg)


def roundtrip(tmp_path: Path, name: str, value: dict, source: str | None = None, **data):
    """prepare -> save_prepared -> load_prepared; returns (in-memory, reloaded)."""
    cfg = parse_dataset_config(name, value)
    prepared = prepare(name, cfg, DataConfig(source=source or name, **data))
    save_prepared(tmp_path / f"{name}.npz", prepared)
    back = load_prepared(tmp_path / f"{name}.npz")
    assert back.classes == prepared.classes and back.meta == prepared.meta
    for s, (x, y) in prepared.splits.items():
        assert np.array_equal(back.split(s)[0], x) and np.array_equal(back.split(s)[1], y)
    return prepared, back


# ==========================================================================================
# fer2013_csv
# ==========================================================================================

USAGES = ["Training"] * 7 + ["PublicTest"] * 3 + ["PrivateTest"] * 3


def write_fer_csv(path: Path, rows: list[tuple], header: str = "emotion,pixels,Usage") -> Path:
    path.write_text(header + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


@pytest.fixture
def fer_csv(tmp_path: Path):
    """A 13-row fer2013.csv: every class in Training, three PublicTest and three PrivateTest rows."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (len(USAGES), 48, 48), dtype=np.uint8)
    y = np.array(list(range(7)) + [0, 3, 6, 2, 4, 5], dtype=np.int64)
    rows = [(int(c), " ".join(map(str, img.ravel())), u) for c, img, u in zip(y, x, USAGES,
                                                                              strict=True)]
    return write_fer_csv(tmp_path / "fer2013.csv", rows), x, y, rows


def test_fer2013_csv_reads_pixels_labels_and_official_splits(fer_csv):
    path, x, y, _ = fer_csv
    raw = load("fer", {"kind": "fer2013_csv", "path": str(path)})
    assert raw.x.shape == (13, 1, 48, 48) and raw.x.dtype == np.uint8
    assert np.array_equal(raw.x[:, 0], x) and np.array_equal(raw.y, y)
    assert raw.classes == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert raw.split.tolist() == ["train"] * 7 + ["val"] * 3 + ["test"] * 3


def test_fer2013_csv_split_mapping_is_configurable(fer_csv):
    path, _, _, _ = fer_csv
    raw = load("fer", {"kind": "fer2013_csv", "path": str(path),
                       "splits": {"Training": "train", "PublicTest": "test", "PrivateTest": "drop"}})
    assert raw.split.tolist() == ["train"] * 7 + ["test"] * 3
    assert raw.info["dropped_rows"] == 3
    unsplit = load("fer", {"kind": "fer2013_csv", "path": str(path), "splits": None})
    assert unsplit.split is None and len(unsplit.y) == 13


def test_fer2013_csv_through_prepare_and_back(fer_csv, tmp_path):
    path, x, _, _ = fer_csv
    prepared, back = roundtrip(tmp_path, "fer", {"kind": "fer2013_csv", "path": str(path)})
    assert [len(back.split(s)[1]) for s in ("train", "val", "test")] == [7, 3, 3]
    assert np.array_equal(back.split("test")[0][:, 0], x[10:])
    assert back.meta["split"] == "official" and back.meta["path"] == str(path)
    assert back.classes == FER2013_CLASSES


def test_fer2013_csv_reads_many_chunks_and_odd_whitespace(fer_csv, monkeypatch):
    path, x, _, rows = fer_csv
    rows = list(rows)
    rows[4] = (rows[4][0], "  " + rows[4][1].replace(" ", "  \t", 5) + " ", rows[4][2])
    write_fer_csv(path, rows)
    monkeypatch.setattr(fer_module, "CHUNK_ROWS", 2)
    raw = load("fer", {"kind": "fer2013_csv", "path": str(path)})
    assert np.array_equal(raw.x[:, 0], x)


def test_fer2013_csv_header_with_spaces_and_other_column_order(fer_csv):
    # Kaggle's icml_face_data.csv: "emotion, Usage, pixels".
    path, x, _, rows = fer_csv
    write_fer_csv(path, [(e, u, p) for e, p, u in rows], header="emotion, Usage, pixels")
    raw = load("fer", {"kind": "fer2013_csv", "path": str(path)})
    assert np.array_equal(raw.x[:, 0], x)


def _short(row):
    return (row[0], row[1].rsplit(" ", 1)[0], row[2])


@pytest.mark.parametrize("bad_row, expected", [
    (lambda r: _short(r), "line 4: 2303 pixel values, expected 2304"),
    (lambda r: (r[0], "", r[2]), "line 4: 0 pixel values, expected 2304"),
    (lambda r: (r[0], r[1].replace(" ", " 12.5 ", 1).rsplit(" ", 1)[0], r[2]),
     "line 4: pixel 2 is '12.5', not an integer"),
    (lambda r: (r[0], "256" + r[1][r[1].index(" "):], r[2]), "line 4: pixel 1 is 256, outside 0..255"),
    (lambda r: (r[0], r[1], "Validation"), "line 4: unknown Usage 'Validation'"),
    (lambda r: (7, r[1], r[2]), "line 4: emotion 7 is outside 0..6"),
    (lambda r: (-1, r[1], r[2]), "line 4: emotion -1 is outside 0..6"),
    (lambda r: ("happy", r[1], r[2]), "line 4: emotion 'happy' is not an integer"),
], ids=["short-row", "empty-pixels", "float-pixel", "pixel-256", "unknown-usage", "label-7",
        "label-negative", "label-text"])
def test_fer2013_csv_malformed_rows_name_file_and_line(fer_csv, monkeypatch, bad_row, expected):
    path, _, _, rows = fer_csv
    rows = list(rows)
    rows[2] = bad_row(rows[2])  # the third data row: line 4 of the file
    write_fer_csv(path, rows)
    monkeypatch.setattr(fer_module, "CHUNK_ROWS", 2)  # the bad row sits in the second chunk
    with pytest.raises(DataFileError) as exc:
        load("fer", {"kind": "fer2013_csv", "path": str(path)})
    assert str(path) in str(exc.value) and expected in str(exc.value)


def test_fer2013_csv_blank_lines_do_not_shift_line_numbers(fer_csv):
    path, _, _, rows = fer_csv
    text = path.read_text().splitlines()
    text.insert(2, "")  # a blank line 3
    text[4] = text[4].replace("Training", "Trainig")  # now line 5
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(DataFileError, match="line 5: unknown Usage 'Trainig'"):
        load("fer", {"kind": "fer2013_csv", "path": str(path)})


def test_fer2013_csv_missing_columns(fer_csv):
    path, _, _, rows = fer_csv
    write_fer_csv(path, [(e, p) for e, p, _ in rows], header="emotion,pixels")
    with pytest.raises(DataFileError, match=r"missing column\(s\) \['Usage'\]") as exc:
        load("fer", {"kind": "fer2013_csv", "path": str(path)})
    assert str(path) in str(exc.value)
    # Without official splits the Usage column is not needed.
    assert len(load("fer", {"kind": "fer2013_csv", "path": str(path), "splits": None}).y) == 13


def test_fer2013_csv_missing_file_says_where_and_how(tmp_path):
    path = tmp_path / "raw" / "fer2013.csv"
    with pytest.raises(DataFileError) as exc:
        load("fer", {"kind": "fer2013_csv", "path": str(path)})
    msg = str(exc.value)
    assert str(path) in msg and KAGGLE_COMPETITION in msg and "download: kaggle" in msg


def test_fer2013_csv_config_is_strict():
    with pytest.raises(ParamsError, match="datasets.fer.download"):
        parse_dataset_config("fer", {"kind": "fer2013_csv", "path": "x.csv", "download": True})
    with pytest.raises(ParamsError, match="datasets.fer.splits.PublicTest"):
        parse_dataset_config("fer", {"kind": "fer2013_csv", "path": "x.csv",
                                     "splits": {"PublicTest": "validation"}})
    with pytest.raises(ParamsError, match="datasets.fer.pixels: unknown key"):
        parse_dataset_config("fer", {"kind": "fer2013_csv", "path": "x.csv", "pixels": 1})


# ==========================================================================================
# image_folder
# ==========================================================================================


def save_image(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def grey(seed: int, size: tuple[int, int] = (8, 8)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8)


def make_folder(root: Path, layout: dict[str, int], ext: str = ".png",
                size: tuple[int, int] = (8, 8)) -> dict[str, list[np.ndarray]]:
    """``{"train/a": 3, ...}`` -> that many random grey images per folder; returns them."""
    images: dict[str, list[np.ndarray]] = {}
    for k, (folder, n) in enumerate(layout.items()):
        images[folder] = [grey(100 * k + i, size) for i in range(n)]
        for i, img in enumerate(images[folder]):
            save_image(root / folder / f"img{i:02d}{ext}", img)
    return images


def test_image_folder_split_layout_png(tmp_path):
    images = make_folder(tmp_path / "ds", {"train/b": 3, "train/a": 2, "val/a": 1, "test/a": 1,
                                           "test/b": 2})
    (tmp_path / "ds" / "train" / "a" / "notes.txt").write_text("not an image; ignored")
    raw = load("ds", {"kind": "image_folder", "path": str(tmp_path / "ds")})
    assert raw.classes == ["a", "b"] and raw.x.shape == (9, 1, 8, 8)
    assert raw.split.tolist() == ["test"] * 3 + ["train"] * 5 + ["val"]
    assert raw.y.tolist() == [0, 1, 1, 0, 0, 1, 1, 1, 0]
    assert np.array_equal(raw.x[3, 0], images["train/a"][0])  # PNG is lossless
    assert np.array_equal(raw.x[7, 0], images["train/b"][2])
    assert raw.info["channels"] == 1 and raw.info["image_size"] == [8, 8]
    assert raw.info["resized"] == 0 and raw.info["converted_mode"] == 0


def test_image_folder_fer_layout_jpg_as_source_carves_val(tmp_path):
    # FER2013's image-folder export: train/<class>/*.jpg and test/<class>/*.jpg, no val.
    layout = {f"{s}/{c}": n for s, n in (("train", 10), ("test", 2)) for c in ("happy", "sad")}
    make_folder(tmp_path / "fer", layout, ext=".jpg", size=(48, 48))
    value = {"kind": "image_folder", "path": str(tmp_path / "fer"), "classes": ["sad", "happy"]}
    prepared, back = roundtrip(tmp_path, "fer", value, val_fraction=0.2)
    assert back.classes == ["sad", "happy"] and back.image_shape == (1, 48, 48)
    assert back.class_counts("train").tolist() == [8, 8]
    assert back.class_counts("val").tolist() == [2, 2]
    assert back.class_counts("test").tolist() == [2, 2]
    assert "val carved from train" in back.meta["split"]


def test_image_folder_flat_layout_with_class_map_as_target(tmp_path):
    # A CK+-like export: <root>/<emotion>/*.png, folder names that need mapping.
    make_folder(tmp_path / "ck", {"anger": 2, "happiness": 3, "contempt": 1})
    value = {"kind": "image_folder", "path": str(tmp_path / "ck"),
             "class_map": {"anger": "angry", "happiness": "happy"}}
    prepared, back = roundtrip(tmp_path, "ck", value, source="fer")
    assert back.classes == ["angry", "contempt", "happy"]
    assert len(back.split("train")[1]) == 0 and back.class_counts("test").tolist() == [2, 1, 3]
    assert back.meta["split"] == "all images as test"
    assert back.meta["class_map"] == {"anger": "angry", "happiness": "happy"}
    assert back.meta["source_classes"] == ["anger", "contempt", "happiness"]


def test_image_folder_converts_channels_and_size_and_records_it(tmp_path):
    root = tmp_path / "ds"
    save_image(root / "a" / "0.png", grey(0, (8, 8)))
    save_image(root / "a" / "1.png", np.stack([grey(1, (6, 10))] * 3, axis=-1))  # RGB, 6x10
    save_image(root / "b" / "0.bmp", grey(2, (8, 8)))
    raw = load("ds", {"kind": "image_folder", "path": str(root)})  # from the first image
    assert raw.x.shape == (3, 1, 8, 8)
    assert raw.info["resized"] == 1 and raw.info["converted_mode"] == 1
    assert raw.info["source_modes"] == {"L": 2, "RGB": 1}
    assert raw.info["size_from"] == "first image"
    rgb = load("ds", {"kind": "image_folder", "path": str(root), "channels": 3, "size": [4, 5]})
    assert rgb.x.shape == (3, 3, 4, 5) and rgb.info["resized"] == 3
    assert rgb.info["converted_mode"] == 2 and rgb.info["size_from"] == "config"
    # Grey to RGB repeats the grey level.
    assert np.array_equal(rgb.x[2, 0], rgb.x[2, 1]) and np.array_equal(rgb.x[2, 0], rgb.x[2, 2])


def test_image_folder_unreadable_image_names_it(tmp_path):
    make_folder(tmp_path / "ds", {"train/a": 2, "test/a": 1})
    bad = tmp_path / "ds" / "train" / "a" / "img01.png"
    bad.write_bytes(b"this is not a PNG")
    with pytest.raises(DataFileError, match="unreadable image") as exc:
        load("ds", {"kind": "image_folder", "path": str(tmp_path / "ds")})
    assert str(bad) in str(exc.value)


def test_image_folder_empty_class_folder_names_it(tmp_path):
    make_folder(tmp_path / "ds", {"train/a": 2, "test/a": 1})
    empty = tmp_path / "ds" / "train" / "b"
    empty.mkdir()
    (empty / "README.txt").write_text("no images")
    with pytest.raises(DataFileError, match="empty class folder") as exc:
        load("ds", {"kind": "image_folder", "path": str(tmp_path / "ds")})
    assert str(empty) in str(exc.value)
    # Listing the classes to read skips the others, and says so.
    raw = load("ds", {"kind": "image_folder", "path": str(tmp_path / "ds"), "classes": ["a"]})
    assert raw.classes == ["a"] and raw.info["skipped_class_folders"] == ["b"]


def test_image_folder_without_images_or_folder(tmp_path):
    (tmp_path / "ds").mkdir()
    with pytest.raises(DataFileError, match="no images at all") as exc:
        load("ds", {"kind": "image_folder", "path": str(tmp_path / "ds")})
    assert str(tmp_path / "ds") in str(exc.value)
    with pytest.raises(DataFileError, match="image folder not found") as exc:
        load("ds", {"kind": "image_folder", "path": str(tmp_path / "nowhere")})
    assert str(tmp_path / "nowhere") in str(exc.value)


def test_image_folder_unknown_class_in_class_map_names_path(tmp_path):
    make_folder(tmp_path / "ck", {"anger": 1, "fear": 1})
    value = {"kind": "image_folder", "path": str(tmp_path / "ck"),
             "class_map": {"happiness": "happy"}}
    with pytest.raises(ParamsError, match=r"class_map: unknown source class\(es\) \['happiness'\]"
                       ) as exc:
        prepare("ck", parse_dataset_config("ck", value), DataConfig(source="fer"))
    assert str(tmp_path / "ck") in str(exc.value) and "available: anger, fear" in str(exc.value)


def test_image_folder_mixed_split_and_class_folders_is_an_error(tmp_path):
    make_folder(tmp_path / "ds", {"train/a": 1, "extra": 1})
    with pytest.raises(DataFileError, match=r"folders \['extra'\] are not split folders"):
        load("ds", {"kind": "image_folder", "path": str(tmp_path / "ds")})


# ==========================================================================================
# npz
# ==========================================================================================


def test_npz_plain_x_y_with_classes_array(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (12, 6, 6), dtype=np.uint8)
    y = np.arange(12) % 3
    np.savez(tmp_path / "d.npz", x=x, y=y, classes=np.array(["r", "g", "b"]))
    raw = load("d", {"kind": "npz", "path": str(tmp_path / "d.npz")})
    assert raw.x.shape == (12, 1, 6, 6) and np.array_equal(raw.x[:, 0], x)
    assert raw.classes == ["r", "g", "b"] and raw.split is None
    _, back = roundtrip(tmp_path, "d", {"kind": "npz", "path": str(tmp_path / "d.npz")},
                        val_fraction=0.25, test_fraction=0.25)
    assert [len(back.split(s)[1]) for s in ("train", "val", "test")] == [6, 3, 3]


def test_npz_float_channels_last_split_parts_and_classes_from_params(tmp_path):
    rng = np.random.default_rng(1)
    x_tr, x_te = rng.random((4, 5, 5, 3)), rng.random((4, 5, 5, 3)).astype(np.float32)
    which = np.array(["PublicTest", "PrivateTest", "PrivateTest", "PublicTest"])
    np.savez(tmp_path / "d.npz", x_train=x_tr, y_train=np.array([0, 1, 0, 1]), x_test=x_te,
             y_test=np.array([1, 1, 0, 0]), test_split=which)
    value = {"kind": "npz", "path": str(tmp_path / "d.npz"), "classes": ["cat", "dog"],
             "parts": [{"x": "x_train", "y": "y_train", "split": "train"},
                       {"x": "x_test", "y": "y_test", "split_by": "test_split",
                        "split_map": {"PublicTest": "val", "PrivateTest": "test"}}]}
    raw = load("d", value)
    assert raw.x.shape == (8, 3, 5, 5) and raw.x.dtype == np.uint8
    assert np.array_equal(raw.x[0], np.rint(np.moveaxis(x_tr[0], -1, 0) * 255).astype(np.uint8))
    assert raw.split.tolist() == ["train"] * 4 + ["val", "test", "test", "val"]
    assert raw.info["arrays"]["x_train"] == {"source_layout": "NHWC", "source_dtype": "float64"}
    _, back = roundtrip(tmp_path, "d", value)
    assert back.classes == ["cat", "dog"] and back.class_counts("val").tolist() == [1, 1]


@pytest.mark.parametrize("arrays, value, expected", [
    ({"x": np.zeros((3, 4, 4), np.uint8), "y": np.array([0, 1, 5])}, {"classes": ["a", "b"]},
     r"y: label 5 at index 2 is outside 0..1"),
    ({"x": np.zeros((3, 4, 4), np.uint8), "y": np.array([0, 1, 1])}, {},
     r"no class names: the file has no 'classes' array"),
    ({"x": np.full((2, 4, 4), 1.5), "y": np.array([0, 1])}, {"classes": ["a", "b"]},
     r"float images must lie in \[0, 1\]"),
    ({"x": np.zeros((2, 3, 4, 3), np.uint8), "y": np.array([0, 1])}, {"classes": ["a", "b"]},
     r"cannot tell the channel axis"),
    ({"x": np.zeros((2, 4, 4), np.uint8), "y": np.array([0, 1]), "s": np.array(["A", "Z"])},
     {"classes": ["a", "b"], "parts": [{"x": "x", "y": "y", "split_by": "s",
                                        "split_map": {"A": "train"}}]},
     r"s\[1\] is 'Z', not in split_map \['A'\]"),
    ({"x": np.zeros((2, 4, 4), np.uint8)}, {"classes": ["a", "b"]}, r"missing arrays \['y'\]"),
], ids=["label-outside", "no-classes", "float-range", "ambiguous-layout", "unknown-split",
        "missing-array"])
def test_npz_errors_name_the_file(tmp_path, arrays, value, expected):
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(DataFileError, match=expected) as exc:
        load("d", {"kind": "npz", "path": str(tmp_path / "d.npz"), **value})
    assert str(tmp_path / "d.npz") in str(exc.value)


def test_npz_config_checks_parts():
    base = {"kind": "npz", "path": "d.npz"}
    with pytest.raises(ParamsError, match="split_by and split_map go together"):
        parse_dataset_config("d", {**base, "parts": [{"x": "x", "y": "y", "split_by": "s"}]})
    with pytest.raises(ParamsError, match="every part a split"):
        parse_dataset_config("d", {**base, "parts": [{"x": "a", "y": "b", "split": "train"},
                                                     {"x": "c", "y": "d"}]})


@pytest.mark.skipif(not FER_NPZ.is_file(), reason=f"benchmark data {FER_NPZ} is absent")
def test_npz_reads_the_fer2013_benchmark_file(tmp_path):
    value = {"kind": "npz", "path": str(FER_NPZ), "drop_test_duplicates": True,
             "parts": [{"x": "x_train", "y": "y_train", "split": "train"},
                       {"x": "x_test", "y": "y_test", "split_by": "test_split",
                        "split_map": {"PublicTest": "val", "PrivateTest": "test"}}]}
    prepared = prepare("fer2013", parse_dataset_config("fer2013", value),
                       DataConfig(source="fer2013"))
    assert prepared.classes == FER2013_CLASSES and prepared.image_shape == (1, 48, 48)
    assert prepared.class_counts("train").tolist() == [3995, 436, 4097, 7215, 4830, 3171, 4965]
    dropped = prepared.meta["test_duplicates_dropped"]
    assert dropped["val"] + dropped["test"] == 568  # measured, see shared/data/README.md
    assert len(prepared.split("val")[1]) == 3589 - dropped["val"]
    assert len(prepared.split("test")[1]) == 3589 - dropped["test"]


# ==========================================================================================
# torchvision (fake dataset objects: no network here)
# ==========================================================================================

FAKE_SHAPES = {"MNIST": (28, 28), "FashionMNIST": (28, 28), "CIFAR10": (32, 32, 3),
               "SVHN": (3, 32, 32), "USPS": (16, 16)}


def fake_torchvision(monkeypatch, calls: list) -> None:
    """Replace the torchvision package by one whose datasets hold a few random images."""

    def make(name: str):
        class Fake:
            def __init__(self, root, download=False, train=None, split=None):
                calls.append((name, root, download, train, split))
                test = train is False or split == "test"
                n = 10 if test else 20
                rng = np.random.default_rng(n)
                self.data = rng.integers(0, 256, (n, *FAKE_SHAPES[name]), dtype=np.uint8)
                labels = list(np.arange(n) % 10)
                if name == "SVHN":
                    self.labels = np.asarray(labels)
                else:
                    self.targets = labels
        return Fake

    datasets = types.ModuleType("torchvision.datasets")
    for name in FAKE_SHAPES:
        setattr(datasets, name, make(name))
    package = types.ModuleType("torchvision")
    package.datasets = datasets
    monkeypatch.setitem(sys.modules, "torchvision", package)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", datasets)


@pytest.mark.parametrize("name", sorted(FAKE_SHAPES))
def test_torchvision_datasets_read_both_official_splits(monkeypatch, tmp_path, name):
    calls: list = []
    fake_torchvision(monkeypatch, calls)
    value = {"kind": "torchvision", "name": name, "root": str(tmp_path)}
    raw = load(name, value)
    channels = 3 if name in ("CIFAR10", "SVHN") else 1
    side = FAKE_SHAPES[name][1]
    assert raw.x.shape == (30, channels, side, side) and raw.x.dtype == np.uint8
    assert raw.split.tolist() == ["train"] * 20 + ["test"] * 10 and len(raw.classes) == 10
    assert [c[2] for c in calls] == [False, False]  # download flag passed through
    _, back = roundtrip(tmp_path, name, value, val_fraction=0.5)
    assert [len(back.split(s)[1]) for s in ("train", "val", "test")] == [10, 10, 10]


def test_torchvision_channel_layouts_are_converted(monkeypatch, tmp_path):
    fake_torchvision(monkeypatch, [])
    cifar = load("c", {"kind": "torchvision", "name": "CIFAR10", "root": str(tmp_path)})
    data = sys.modules["torchvision.datasets"].CIFAR10(root="r", train=True).data
    assert np.array_equal(cifar.x[0], np.moveaxis(data[0], -1, 0))
    assert cifar.classes[0] == "airplane"


def test_torchvision_missing_files_offline_says_what_to_do(tmp_path):
    pytest.importorskip("torchvision")
    root = tmp_path / "tv"
    with pytest.raises(DataFileError) as exc:
        load("m", {"kind": "torchvision", "name": "MNIST", "root": str(root)})
    msg = str(exc.value)
    assert "MNIST" in msg and str(root) in msg and "download: true (needs network" in msg


def test_torchvision_failed_download_says_network(monkeypatch, tmp_path):
    class Offline:
        def __init__(self, **kwargs):
            raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    fake_torchvision(monkeypatch, [])
    monkeypatch.setattr(sys.modules["torchvision.datasets"], "USPS", Offline)
    with pytest.raises(DataFileError, match="download into .* failed .*needs network access"):
        load("u", {"kind": "torchvision", "name": "USPS", "root": str(tmp_path), "download": True})


# ==========================================================================================
# The prepare stage: a bad file fails cleanly and writes nothing
# ==========================================================================================


def run_prepare_stage(tmp_path: Path, dataset: dict, out: Path) -> subprocess.CompletedProcess:
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"data": {"source": "fer"}, "datasets": {"fer": dataset}}))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src") + os.pathsep
           + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-m", "stages.prepare", "--name", "fer", "--out", str(out),
         "--params", str(params)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_prepare_stage_fails_on_a_malformed_csv_and_writes_nothing(fer_csv, tmp_path):
    path, _, _, rows = fer_csv
    rows = list(rows)
    rows[5] = _short(rows[5])
    write_fer_csv(path, rows)
    out = tmp_path / "prepared" / "fer.npz"
    proc = run_prepare_stage(tmp_path, {"kind": "fer2013_csv", "path": str(path)}, out)
    assert proc.returncode != 0
    assert f"{path}, line 7: 2303 pixel values, expected 2304" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()
    assert not out.parent.exists() or not list(out.parent.iterdir())  # no temp files left


def test_prepare_stage_writes_a_good_csv(fer_csv, tmp_path):
    path, _, _, _ = fer_csv
    out = tmp_path / "prepared" / "fer.npz"
    proc = run_prepare_stage(tmp_path, {"kind": "fer2013_csv", "path": str(path),
                                        "class_subset": ["angry", "fear", "happy"]}, out)
    assert proc.returncode == 0, proc.stderr
    back = load_prepared(out)
    assert back.classes == ["angry", "fear", "happy"]
    assert back.class_counts("train").tolist() == [1, 1, 1]
