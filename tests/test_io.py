"""Atomic writes leave nothing half-written; checked reads name the file they failed on."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from ganaug.io import (
    DataFileError,
    atomic_path,
    load_json,
    load_npy,
    load_npz,
    save_json,
    save_npy,
    save_npz,
)


class Boom(RuntimeError):
    pass


def named(path: Path) -> str:
    return re.escape(str(path))


# --------------------------------------------------------------------------------------------
# atomic_path
# --------------------------------------------------------------------------------------------


def test_atomic_file_write_replaces_the_target_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        assert not tmp.exists()  # the caller creates it
        tmp.write_text("new")
        assert target.read_text() == "old"  # not visible until the body finishes
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_atomic_path_creates_missing_parent_directories(tmp_path):
    target = tmp_path / "a" / "b" / "out.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("x")
    assert target.read_text() == "x"


@pytest.mark.parametrize("write_first", [False, True])
def test_atomic_file_write_that_raises_keeps_the_old_file(tmp_path, write_first):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(Boom), atomic_path(target) as tmp:
        if write_first:
            tmp.write_text("half-writ")
        raise Boom
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_atomic_file_write_that_raises_leaves_nothing_when_there_was_no_file(tmp_path):
    target = tmp_path / "out.npz"
    with pytest.raises(Boom), atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        raise Boom
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_cleans_up_on_keyboard_interrupt(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_atomic_directory_write_replaces_an_existing_directory(tmp_path):
    target = tmp_path / "outdir"
    target.mkdir()
    (target / "stale.txt").write_text("stale")
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "fresh.txt").write_text("fresh")
    assert sorted(p.name for p in target.iterdir()) == ["fresh.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outdir"]


def test_atomic_directory_write_that_raises_keeps_the_old_directory(tmp_path):
    target = tmp_path / "outdir"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(Boom), atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "sub").mkdir()
        (tmp / "sub" / "part.bin").write_bytes(b"x" * 10)
        raise Boom
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outdir"]
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"]


def test_save_json_of_an_unserialisable_value_keeps_the_old_file(tmp_path):
    target = tmp_path / "m.json"
    save_json(target, {"a": 1})
    with pytest.raises(ValueError):
        save_json(target, {"a": float("nan")})  # allow_nan=False: NaN is not JSON
    assert load_json(target) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]


# --------------------------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------------------------


def test_npz_npy_json_round_trip(tmp_path):
    a = np.arange(12, dtype=np.uint8).reshape(3, 4)
    b = np.array(["x", "yz"])
    save_npz(tmp_path / "d.npz", a=a, b=b)
    out = load_npz(tmp_path / "d.npz", required=("a", "b"))
    assert np.array_equal(out["a"], a) and out["a"].dtype == np.uint8
    assert out["b"].tolist() == ["x", "yz"]
    save_npy(tmp_path / "d.npy", a)
    assert np.array_equal(load_npy(tmp_path / "d.npy"), a)
    mm = load_npy(tmp_path / "d.npy", mmap=True)
    assert isinstance(mm, np.memmap) and np.array_equal(mm, a)
    save_json(tmp_path / "d.json", {"k": [1, 2.5, None, "s"]})
    assert load_json(tmp_path / "d.json") == {"k": [1, 2.5, None, "s"]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.json", "d.npy", "d.npz"]


# --------------------------------------------------------------------------------------------
# Errors that name the file
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("load", [load_npz, load_npy, load_json])
def test_missing_file_is_named(tmp_path, load):
    path = tmp_path / "absent.bin"
    with pytest.raises(DataFileError, match=rf"{named(path)}: file not found"):
        load(path)


@pytest.fixture
def npz_file(tmp_path) -> Path:
    path = tmp_path / "good.npz"
    save_npz(path, x=np.zeros((4, 4), np.float32), y=np.arange(10))
    return path


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_unreadable_npz_is_named(npz_file, damage):
    data = npz_file.read_bytes()
    bad = npz_file.with_name("bad.npz")
    bad.write_bytes({"truncated": data[: len(data) // 2], "garbage": b"\x00garbage" * 30,
                     "empty": b""}[damage])
    with pytest.raises(DataFileError, match=named(bad)):
        load_npz(bad)


def test_npz_with_a_pickled_array_is_refused(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, a=np.array([{"k": 1}], dtype=object))
    with pytest.raises(DataFileError, match=named(path)):
        load_npz(path)


def test_npz_with_corrupt_compressed_data_is_named(tmp_path):
    path = tmp_path / "corrupt.npz"
    save_npz(path, a=np.random.default_rng(0).normal(size=1000))
    data = bytearray(path.read_bytes())
    for i in range(100, 400):  # inside the deflate stream of the only member
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DataFileError, match=named(path)):
        load_npz(path)


def test_npz_missing_arrays_are_listed_with_what_it_holds(npz_file):
    with pytest.raises(DataFileError) as info:
        load_npz(npz_file, required=("x", "labels", "classes"))
    msg = str(info.value)
    assert msg.startswith(str(npz_file))
    assert "['labels', 'classes']" in msg and "['x', 'y']" in msg


@pytest.mark.parametrize("mmap", [False, True])
@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_unreadable_npy_is_named(tmp_path, damage, mmap):
    good = tmp_path / "good.npy"
    save_npy(good, np.arange(1000, dtype=np.float64))
    data = good.read_bytes()
    bad = tmp_path / "bad.npy"
    bad.write_bytes({"truncated": data[:300], "garbage": b"garbage" * 10, "empty": b""}[damage])
    with pytest.raises(DataFileError, match=named(bad)):
        load_npy(bad, mmap=mmap)


def test_truncated_json_is_named(tmp_path):
    path = tmp_path / "m.json"
    path.write_text('{"accuracy": 0.9, "per_cl')
    with pytest.raises(DataFileError, match=rf"{named(path)}: not valid JSON"):
        load_json(path)


def test_binary_json_is_named(tmp_path):
    path = tmp_path / "m.json"
    path.write_bytes(b"\xff\xfe\x00{\x89PNG")
    with pytest.raises(DataFileError, match=named(path)):
        load_json(path)
