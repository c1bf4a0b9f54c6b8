"""Seconds to load a real-size fer2013.csv (35,887 rows of 48x48 pixels) through ``fer2013_csv``.

The CSV is written to a temporary folder from ``../shared/data/fer2013.npz`` when that file exists
(same images, labels and PublicTest/PrivateTest split), otherwise from seeded random pixels; it
is deleted afterwards. Wall-clock and CPU seconds are printed for each repeat (CPU time is the
steadier figure on a shared machine).

    python benchmarks/fer2013_csv_load.py
    python benchmarks/fer2013_csv_load.py --npz /path/to/fer2013.npz --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ganaug.data.prepare import DATASET_KINDS, parse_dataset_config

DEFAULT_NPZ = Path(__file__).resolve().parents[2] / "shared" / "data" / "fer2013.npz"
ROWS = {"Training": 28709, "PublicTest": 3589, "PrivateTest": 3589}


def fer2013_arrays(npz: Path, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Images uint8 (N, 48, 48), labels (N,), Usage strings (N,), and where they came from."""
    if npz.is_file():
        z = np.load(npz, allow_pickle=False)
        x = np.concatenate([z["x_train"], z["x_test"]])
        y = np.concatenate([z["y_train"], z["y_test"]])
        usage = np.concatenate([np.full(len(z["y_train"]), "Training"), z["test_split"]])
        return x, y, usage, str(npz)
    rng = np.random.default_rng(seed)
    n = sum(ROWS.values())
    usage = np.concatenate([np.full(k, name) for name, k in ROWS.items()])
    return (rng.integers(0, 256, (n, 48, 48), dtype=np.uint8), rng.integers(0, 7, n), usage,
            f"random pixels, seed {seed}")


def write_csv(path: Path, x: np.ndarray, y: np.ndarray, usage: np.ndarray) -> None:
    """Kaggle's layout: header ``emotion,pixels,Usage``, pixels space-separated, row-major."""
    text = np.array([str(v) for v in range(256)], dtype=object)
    pixels = [" ".join(text[row]) for row in x.reshape(len(x), -1)]
    pd.DataFrame({"emotion": y, "pixels": pixels, "Usage": usage}).to_csv(path, index=False)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--npz", type=Path, default=DEFAULT_NPZ)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    x, y, usage, origin = fer2013_arrays(args.npz, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "fer2013.csv"
        write_csv(csv, x, y, usage)
        print(f"fer2013.csv: {len(y)} rows, {csv.stat().st_size / 1e6:.0f} MB, from {origin}")
        cfg = parse_dataset_config("fer2013", {"kind": "fer2013_csv", "path": str(csv)})
        load = DATASET_KINDS["fer2013_csv"].load
        walls, cpus = [], []
        for i in range(args.repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            raw = load(cfg)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
            print(f"repeat {i + 1}: {walls[-1]:.2f} s wall, {cpus[-1]:.2f} s CPU")
        assert np.array_equal(raw.x[:, 0], x) and np.array_equal(raw.y, y)
    print(f"load seconds: median {statistics.median(walls):.2f} wall "
          f"(best {min(walls):.2f}), median {statistics.median(cpus):.2f} CPU")


if __name__ == "__main__":
    main()
