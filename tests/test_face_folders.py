"""Face-dataset layouts in the ``image_folder`` kind: labels from file names (JAFFE), subject and
sequence groups that never straddle a seeded split (CK+), a crop box, TIFF by default, and the
README's examples run as written.

The folders are written small by each test; each image carries its identity in its pixels
(subject, sequence, frame), so a split can be read back from the prepared arrays alone.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from ganaug.config import DataConfig, ParamsError
from ganaug.data import load_prepared, save_prepared
from ganaug.data.prepare import (
    DATASET_KINDS,
    group_split,
    parse_dataset_config,
    prepare,
    scarce_subset,
)
from ganaug.io import DataFileError

REPO_ROOT = Path(__file__).resolve().parents[1]
JAFFE_LABEL = r"^[A-Z]+\.(?P<label>[A-Z]{2})\d*\."
JAFFE_GROUP = r"^(?P<group>[A-Z]+)\."
CK_GROUP = r"^(?P<group>S\d+)_"


def load(value: dict):
    cfg = parse_dataset_config("ds", value)
    return DATASET_KINDS[cfg.kind].load(cfg)


def roundtrip(tmp_path: Path, value: dict, source: bool = True, **data):
    """prepare (as the source, or as a target) -> save -> load_prepared."""
    cfg = parse_dataset_config("ds", value)
    prepared = prepare("ds", cfg, DataConfig(source="ds" if source else "other", **data))
    save_prepared(tmp_path / "ds.npz", prepared)
    return load_prepared(tmp_path / "ds.npz")


def tagged(*tags: int, size: tuple[int, int] = (4, 4)) -> np.ndarray:
    """A grey image whose first pixels are ``tags`` (then zeros): its identity, readable back."""
    img = np.zeros(size, dtype=np.uint8)
    img.flat[: len(tags)] = tags
    return img


def save(path: Path, array: np.ndarray, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kw)
    return path


# ==========================================================================================
# Labels from file names (JAFFE)
# ==========================================================================================

JAFFE_FILES = ["KA.AN1.39.tiff", "KA.HA2.44.tiff", "KM.AN3.17.tiff", "KM.NE1.1.tiff",
               "YM.HA1.52.tiff", "YM.NE2.50.tiff"]


def write_jaffe(root: Path, names: list[str] = JAFFE_FILES, size=(4, 4)) -> dict[str, np.ndarray]:
    images = {name: tagged(k + 1, size=size) for k, name in enumerate(names)}
    for name, img in images.items():
        save(root / name, img)
    (root / "README.txt").write_text("JAFFE: not an image, ignored")
    return images


def test_labels_from_file_names_in_a_flat_folder_of_tiffs(tmp_path):
    images = write_jaffe(tmp_path / "jaffe")
    raw = load({"kind": "image_folder", "path": str(tmp_path / "jaffe"),
                "label_pattern": JAFFE_LABEL})  # .tiff is read without listing extensions
    assert raw.classes == ["AN", "HA", "NE"] and raw.split is None
    assert raw.y.tolist() == [0, 1, 0, 2, 1, 2]  # files in name order
    for x, name in zip(raw.x, JAFFE_FILES, strict=True):
        assert np.array_equal(x[0], images[name])  # TIFF is lossless
    assert raw.info["label_pattern"] == JAFFE_LABEL
    assert raw.info["label_unmatched"] == {"skipped": 0, "examples": []}


def test_label_codes_are_renamed_by_class_map_and_subset(tmp_path):
    write_jaffe(tmp_path / "jaffe")
    value = {"kind": "image_folder", "path": str(tmp_path / "jaffe"), "label_pattern": JAFFE_LABEL,
             "class_map": {"AN": "angry", "HA": "happy", "NE": "neutral"},
             "class_subset": ["happy", "angry"]}
    back = roundtrip(tmp_path, value, source=False)
    assert back.classes == ["happy", "angry"]
    assert back.class_counts("test").tolist() == [2, 2]
    assert back.meta["source_classes"] == ["AN", "HA", "NE"]
    assert back.meta["dropped_by_class_subset"] == 2


def test_label_pattern_in_the_split_layout(tmp_path):
    root = tmp_path / "ds"
    save(root / "train" / "KA.AN1.1.png", tagged(1))
    save(root / "train" / "KA.SU1.2.png", tagged(2))
    save(root / "test" / "YM.SU3.3.png", tagged(3))
    raw = load({"kind": "image_folder", "path": str(root), "label_pattern": JAFFE_LABEL})
    assert raw.classes == ["AN", "SU"]
    assert raw.split.tolist() == ["test", "train", "train"]
    assert raw.y.tolist() == [1, 0, 1] and raw.x[:, 0, 0, 0].tolist() == [3, 1, 2]


def test_classes_lists_label_codes_in_label_order_and_skips_the_rest(tmp_path):
    write_jaffe(tmp_path / "jaffe")
    raw = load({"kind": "image_folder", "path": str(tmp_path / "jaffe"),
                "label_pattern": JAFFE_LABEL, "classes": ["NE", "AN"]})
    assert raw.classes == ["NE", "AN"] and raw.y.tolist() == [1, 1, 0, 0]
    assert raw.info["skipped_labels"] == ["HA"]
    with pytest.raises(DataFileError, match=r"no file whose label_pattern captures for classes "
                                            r"\['SU'\]"):
        load({"kind": "image_folder", "path": str(tmp_path / "jaffe"),
              "label_pattern": JAFFE_LABEL, "classes": ["SU"]})


def test_a_file_name_the_pattern_does_not_match_is_an_error_naming_file_and_pattern(tmp_path):
    write_jaffe(tmp_path / "jaffe")
    odd = save(tmp_path / "jaffe" / "scan_0001.tiff", tagged(9))
    with pytest.raises(DataFileError) as exc:
        load({"kind": "image_folder", "path": str(tmp_path / "jaffe"),
              "label_pattern": JAFFE_LABEL})
    msg = str(exc.value)
    assert msg.startswith(str(odd)) and JAFFE_LABEL in msg and "unmatched: skip" in msg


def test_unmatched_skip_counts_the_skipped_files_in_the_meta(tmp_path):
    write_jaffe(tmp_path / "jaffe")
    save(tmp_path / "jaffe" / "scan_0001.tiff", tagged(9))
    save(tmp_path / "jaffe" / "KA.X1.1.tiff", tagged(9))  # one letter: no two-letter code
    back = roundtrip(tmp_path, {"kind": "image_folder", "path": str(tmp_path / "jaffe"),
                                "label_pattern": JAFFE_LABEL, "unmatched": "skip"}, source=False)
    assert back.meta["files"] == 6 and back.class_counts("test").tolist() == [2, 2, 2]
    assert back.meta["label_unmatched"] == {"skipped": 2,
                                            "examples": ["KA.X1.1.tiff", "scan_0001.tiff"]}
    with pytest.raises(DataFileError, match="no images left to read"):
        load({"kind": "image_folder", "path": str(tmp_path / "jaffe"), "unmatched": "skip",
              "label_pattern": r"^(?P<label>nothing)"})


def test_label_pattern_with_images_only_in_subfolders_says_where_they_must_be(tmp_path):
    save(tmp_path / "ds" / "KA" / "KA.AN1.1.png", tagged(1))
    with pytest.raises(DataFileError, match=r"images lie directly in it.*holds folders \['KA'\]"):
        load({"kind": "image_folder", "path": str(tmp_path / "ds"), "label_pattern": JAFFE_LABEL})


@pytest.mark.parametrize("key, value, says", [
    ("label_pattern", "^(?P<label>[A-Z]{2}", "not a valid regular expression"),
    ("label_pattern", r"^[A-Z]+\.([A-Z]{2})", "needs a named group (?P<label>...)"),
    ("group_pattern", r"^(?P<label>S\d+)_", "needs a named group (?P<group>...)"),
    ("crop", [0, 0, 10], "expected [left, top, right, bottom]"),
    ("crop", [10, 0, 5, 8], "expected 0 <= left < right and 0 <= top < bottom"),
    ("crop", [-1, 0, 5, 8], "expected 0 <= left < right"),
    ("unmatched", "ignore", "unmatched"),
])
def test_pattern_and_crop_params_are_checked(key, value, says):
    with pytest.raises(ParamsError) as exc:
        parse_dataset_config("jaffe", {"kind": "image_folder", "path": "x", key: value})
    assert "datasets.jaffe" in str(exc.value) and key in str(exc.value)
    assert says in str(exc.value)


# ==========================================================================================
# Crop box
# ==========================================================================================

KNOWN = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5  # (H 6, W 8): pixel (r, c) = 5 (8r + c)


def test_crop_box_is_applied_before_resizing(tmp_path):
    save(tmp_path / "ds" / "a" / "x.png", KNOWN)
    save(tmp_path / "ds" / "a" / "y.tif", KNOWN[::-1])
    box = [2, 1, 5, 4]  # left, top, right, bottom: columns 2..4, rows 1..3
    raw = load({"kind": "image_folder", "path": str(tmp_path / "ds"), "crop": box})
    assert raw.x.shape == (2, 1, 3, 3) and raw.info["size_from"] == "first image"
    assert raw.x[0, 0].tolist() == KNOWN[1:4, 2:5].tolist()
    assert raw.x[1, 0].tolist() == KNOWN[::-1][1:4, 2:5].tolist()
    assert raw.info["crop"] == box and raw.info["resized"] == 0
    # Then resized: nearest-neighbour doubling of the 3x3 crop.
    big = load({"kind": "image_folder", "path": str(tmp_path / "ds"), "crop": box, "size": [6, 6],
                "resample": "nearest"})
    assert big.x[0, 0].tolist() == KNOWN[1:4, 2:5].repeat(2, 0).repeat(2, 1).tolist()
    assert big.info["resized"] == 2


def test_crop_box_is_in_upright_pixels(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: a viewer turns it 90 degrees clockwise
    save(tmp_path / "ds" / "a" / "x.png", KNOWN, exif=exif)
    upright = np.rot90(KNOWN, -1)  # (8, 6)
    raw = load({"kind": "image_folder", "path": str(tmp_path / "ds"), "crop": [1, 2, 4, 7]})
    assert raw.x[0, 0].tolist() == upright[2:7, 1:4].tolist()


def test_crop_box_outside_an_image_names_the_file_and_its_size(tmp_path):
    save(tmp_path / "ds" / "a" / "big.png", np.zeros((10, 10), np.uint8))
    small = save(tmp_path / "ds" / "a" / "small.png", KNOWN)
    with pytest.raises(DataFileError) as exc:
        load({"kind": "image_folder", "path": str(tmp_path / "ds"), "crop": [0, 0, 10, 10]})
    msg = str(exc.value)
    assert msg.startswith(str(small)) and "[0, 0, 10, 10]" in msg and "8x6 pixels" in msg


# ==========================================================================================
# Groups (CK+: subject S010, sequence 004, frame 17 -> S010_004_00000017.png)
# ==========================================================================================

CK_FOLDERS = ["anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise"]


def write_ckplus(root: Path, subjects: int = 12, frames: int = 3, seed: int = 0) -> None:
    """Each subject has sequences of 2 to 4 expressions, ``frames`` frames each; every image is
    tagged (subject, sequence, frame)."""
    rng = np.random.default_rng(seed)
    for s in range(1, subjects + 1):
        for q, folder in enumerate(rng.choice(CK_FOLDERS, rng.integers(2, 5), replace=False), 1):
            for f in range(1, frames + 1):
                save(root / folder / f"S{s:03d}_{q:03d}_{f:08d}.png", tagged(s, q, f))


def subjects(x: np.ndarray) -> set[int]:
    return set(x[:, 0, 0, 0].tolist())


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_no_subject_straddles_the_seeded_splits(tmp_path, seed):
    write_ckplus(tmp_path / "ck", subjects=16)
    value = {"kind": "image_folder", "path": str(tmp_path / "ck"), "group_pattern": CK_GROUP}
    back = roundtrip(tmp_path, value, seed=seed)
    train, val, test = (subjects(back.split(s)[0]) for s in ("train", "val", "test"))
    assert train and val and test
    assert not (train & val) and not (train & test) and not (val & test)
    assert train | val | test == set(range(1, 17))
    assert back.meta["groups"] == {"train": len(train), "val": len(val), "test": len(test),
                                   "straddling": 0}
    assert back.meta["groups_found"] == 16 and back.meta["group_pattern"] == CK_GROUP
    assert "whole groups" in back.meta["split"]


def test_without_groups_the_same_folder_does_straddle(tmp_path):
    # The control: an image-level split of the folder above mixes subjects across splits.
    write_ckplus(tmp_path / "ck", subjects=16)
    back = roundtrip(tmp_path, {"kind": "image_folder", "path": str(tmp_path / "ck")})
    train, test = subjects(back.split("train")[0]), subjects(back.split("test")[0])
    assert train & test and "groups" not in back.meta


def test_sequence_groups_keep_a_sequence_together(tmp_path):
    write_ckplus(tmp_path / "ck", subjects=6, frames=4)
    value = {"kind": "image_folder", "path": str(tmp_path / "ck"),
             "group_pattern": r"^(?P<group>S\d+_\d+)_"}
    back = roundtrip(tmp_path, value)
    where = {}
    for s in ("train", "val", "test"):
        for img in back.split(s)[0]:
            where.setdefault((int(img[0, 0, 0]), int(img[0, 0, 1])), set()).add(s)
    assert all(len(splits) == 1 for splits in where.values())
    assert back.meta["groups"]["straddling"] == 0
    assert sum(back.meta["groups"][s] for s in ("train", "val", "test")) == len(where)


def test_official_split_is_kept_and_val_is_carved_by_whole_groups(tmp_path):
    root = tmp_path / "ds"
    for s in range(1, 11):
        for f in range(3):
            save(root / "train" / ("a" if s % 2 else "b") / f"S{s:03d}_001_{f:08d}.png",
                 tagged(s, 1, f))
    save(root / "test" / "a" / "S001_009_00000001.png", tagged(1, 9, 1))  # S001 also in train
    save(root / "test" / "b" / "S020_001_00000001.png", tagged(20, 1, 1))
    back = roundtrip(tmp_path, {"kind": "image_folder", "path": str(root),
                                "group_pattern": CK_GROUP}, val_fraction=0.2)
    train, val = subjects(back.split("train")[0]), subjects(back.split("val")[0])
    assert val and not (train & val) and train | val == set(range(1, 11))
    assert subjects(back.split("test")[0]) == {1, 20}  # official: kept as is
    assert back.meta["groups"]["straddling"] == 1  # S001, in train or val and in test
    assert "val carved from train (stratified by class, whole groups" in back.meta["split"]


def test_a_target_records_its_groups(tmp_path):
    write_ckplus(tmp_path / "ck", subjects=5)
    back = roundtrip(tmp_path, {"kind": "image_folder", "path": str(tmp_path / "ck"),
                                "group_pattern": CK_GROUP}, source=False)
    assert back.meta["groups"] == {"train": 0, "val": 0, "test": 5, "straddling": 0}


def test_an_unmatched_group_pattern_is_an_error_or_skipped(tmp_path):
    write_ckplus(tmp_path / "ck", subjects=3)
    odd = save(tmp_path / "ck" / "happy" / "extra.png", tagged(99))
    value = {"kind": "image_folder", "path": str(tmp_path / "ck"), "group_pattern": CK_GROUP}
    with pytest.raises(DataFileError) as exc:
        load(value)
    assert str(exc.value).startswith(str(odd)) and CK_GROUP in str(exc.value)
    raw = load({**value, "unmatched": "skip"})
    assert 99 not in raw.x[:, 0, 0, 0] and raw.info["group_unmatched"]["examples"] == ["extra.png"]
    assert len(raw.groups) == len(raw.y) and set(raw.groups) == {"S001", "S002", "S003"}


def test_too_few_groups_for_a_test_split_says_why(tmp_path):
    write_ckplus(tmp_path / "ck", subjects=1)
    with pytest.raises(ParamsError, match=r"empty test split \(1 groups, and a group never"):
        roundtrip(tmp_path, {"kind": "image_folder", "path": str(tmp_path / "ck"),
                             "group_pattern": CK_GROUP})


# ------------------------------------------------------------------------------------------
# group_split and scarcity, on arrays
# ------------------------------------------------------------------------------------------


def random_groups(n_groups: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Groups of 1 to 12 images, each image of a random class."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 13, n_groups)
    groups = np.repeat([f"g{i}" for i in range(n_groups)], sizes)
    return rng.integers(0, classes, len(groups)), groups


def test_group_split_keeps_groups_whole_and_class_proportions_close():
    y, groups = random_groups(300, 5, seed=0)
    idx = group_split(y, groups, 0.15, 0.25, np.random.default_rng(0))
    assert np.array_equal(np.sort(np.concatenate(list(idx.values()))), np.arange(len(y)))
    owners = [set(groups[idx[s]]) for s in ("train", "val", "test")]
    assert not (owners[0] & owners[1]) and not (owners[0] & owners[2]) and not (owners[1] & owners[2])
    for c in range(5):
        total = (y == c).sum()
        for s, frac in (("train", 0.6), ("val", 0.15), ("test", 0.25)):
            share = (y[idx[s]] == c).sum() / total
            assert abs(share - frac) < 0.03, (c, s, share)


def test_group_split_is_seeded_and_gives_nothing_to_a_zero_fraction():
    y, groups = random_groups(60, 3, seed=1)
    a = group_split(y, groups, 0.2, 0.0, np.random.default_rng(4))
    b = group_split(y, groups, 0.2, 0.0, np.random.default_rng(4))
    c = group_split(y, groups, 0.2, 0.0, np.random.default_rng(5))
    assert all(np.array_equal(a[s], b[s]) for s in a)
    assert not np.array_equal(a["val"], c["val"])
    assert len(a["test"]) == 0 and len(a["val"]) > 0


def test_scarcity_with_groups_takes_one_image_per_group_first():
    # Class 0: group A has 6 images, B, C and D one each; class 1: 4 images of group E.
    groups = np.array(["A"] * 6 + ["B", "C", "D"] + ["E"] * 4)
    y = np.array([0] * 9 + [1] * 4)
    idx = np.arange(len(y))
    for seed in range(5):
        kept = scarce_subset(y, idx, 4, None, np.random.default_rng(seed), groups)
        assert sorted(groups[kept[y[kept] == 0]]) == ["A", "B", "C", "D"]
        assert len(kept[y[kept] == 1]) == 4
        five = scarce_subset(y, idx, 5, None, np.random.default_rng(seed), groups)
        assert sorted(groups[five[y[five] == 0]]) == ["A", "A", "B", "C", "D"]
    # Without groups the same call may well take three of A: this is what groups change.
    draws = [scarce_subset(y, idx, 4, None, np.random.default_rng(s)) for s in range(20)]
    assert any((groups[d[y[d] == 0]] == "A").sum() > 1 for d in draws)


def test_real_per_class_with_groups_spreads_over_subjects(tmp_path):
    write_ckplus(tmp_path / "ck", subjects=16, frames=4)
    value = {"kind": "image_folder", "path": str(tmp_path / "ck"), "group_pattern": CK_GROUP}
    full = roundtrip(tmp_path, value)
    scarce = roundtrip(tmp_path, value, real_per_class=2)
    assert np.array_equal(scarce.split("test")[0], full.split("test")[0])  # test unchanged
    x, y = scarce.split("train")
    available = full.class_counts("train")
    for c in range(len(scarce.classes)):
        want = min(2, available[c])
        assert (y == c).sum() == want
        subjects_of_c = {int(s) for s in full.split("train")[0][full.split("train")[1] == c,
                                                                 0, 0, 0]}
        assert len(subjects(x[y == c])) == min(want, len(subjects_of_c))


# ==========================================================================================
# The README's examples, as written
# ==========================================================================================


def readme_dataset(name: str) -> dict:
    """``datasets.<name>`` from a yaml block of the README's "## Datasets" section."""
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("## Datasets\n", 1)[1].split("\n## ", 1)[0]
    for block in re.findall(r"```yaml\n(.*?)```", section, re.S):
        entry = (yaml.safe_load(block).get("datasets") or {}).get(name)
        if entry:
            return entry
    raise AssertionError(f"README.md: no datasets.{name} example under ## Datasets")


def test_readme_ckplus48_example_reads_the_ckplus48_folder_names(tmp_path):
    write_ckplus(tmp_path / "ck", subjects=10)
    entry = {**readme_dataset("ckplus"), "path": str(tmp_path / "ck")}
    back = roundtrip(tmp_path, entry, source=False)
    assert back.classes == ["angry", "disgust", "fear", "happy", "sad", "surprise"]
    assert "contempt" not in back.classes and back.meta["groups"]["test"] >= 1
    assert back.image_shape == (1, 48, 48)


def test_readme_jaffe_example_reads_jaffe_tiffs_with_its_crop(tmp_path):
    root = tmp_path / "jaffe"
    codes = ["AN", "DI", "FE", "HA", "NE", "SA", "SU"]
    face = np.zeros((256, 256), np.uint8)
    face[72:200, 64:192] = 200  # the face box of the README example, bright on black
    for k, code in enumerate(codes):
        save(root / f"KA.{code}1.{k + 1}.tiff", face)
    entry = {**readme_dataset("jaffe"), "path": str(root)}
    back = roundtrip(tmp_path, entry, source=False)
    assert back.classes == ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    x = back.split("test")[0]
    assert x.shape == (7, 1, 48, 48) and (x == 200).all()  # the crop holds only the face
