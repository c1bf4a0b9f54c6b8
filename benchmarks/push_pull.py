"""``dvc push`` + ``dvc pull`` of a synthetic pool through a local remote: the project's layout
(a few large files) against one PNG file per image.

    python benchmarks/push_pull.py [--images 100000] [--jobs 4]

Both layouts hold the same uint8 48x48 grey images: ``pool/`` with ``images.npy``,
``labels.npy``, ``sources.npy`` and ``meta.json`` (what the generate stage writes), and
``pngs/<class>/<i>.png``. Each is tracked with ``dvc add`` in its own git + DVC repository,
pushed to its own local remote, then pulled into a fresh clone; the timed figures are the push
and the pull (the clone's ``dvc pull`` with an empty cache), with ``--jobs`` transfers.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def dvc(cwd: Path, *args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, check=True,
                   capture_output=True)
    return time.perf_counter() - start


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def write_pool(root: Path, x: np.ndarray, y: np.ndarray) -> None:
    root.mkdir(parents=True)
    np.save(root / "images.npy", x)
    np.save(root / "labels.npy", y)
    np.save(root / "sources.npy", np.full((len(y), 2), -1, np.int64))
    (root / "meta.json").write_text(json.dumps({"n": len(y)}))


def write_pngs(root: Path, x: np.ndarray, y: np.ndarray) -> None:
    for c in np.unique(y):
        (root / str(c)).mkdir(parents=True)
    for i, (img, c) in enumerate(zip(x, y, strict=True)):
        Image.fromarray(img[0]).save(root / str(c) / f"{i:07d}.png")


def measure(base: Path, name: str, write, x, y, jobs: int) -> dict:
    repo, remote, clone = base / f"{name}-repo", base / f"{name}-remote", base / f"{name}-clone"
    repo.mkdir()
    git(repo, "init", "-q")
    dvc(repo, "init", "-q")
    write(repo / "data", x, y)
    files = sum(1 for p in (repo / "data").rglob("*") if p.is_file())
    add = dvc(repo, "add", "data")
    dvc(repo, "remote", "add", "-d", "lab", str(remote))
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=b", "-c", "user.email=b@example.invalid", "commit", "-qm", "data")
    push = dvc(repo, "push", "-j", str(jobs))
    git(base, "clone", "-q", str(repo), str(clone))
    pull = dvc(clone, "pull", "-j", str(jobs))
    size = sum(p.stat().st_size for p in (repo / "data").rglob("*") if p.is_file())
    for d in (repo, remote, clone):
        shutil.rmtree(d)
    return {"layout": name, "files": files, "mib": size / 2**20, "add": add, "push": push,
            "pull": pull}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=100_000)
    p.add_argument("--jobs", type=int, default=4)
    p.add_argument("--dir", type=Path, default=None)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.images, 1, 48, 48), dtype=np.uint8)
    y = np.arange(args.images, dtype=np.int64) % 7
    base = Path(tempfile.mkdtemp(dir=args.dir, prefix="push-pull-"))
    try:
        rows = [measure(base, "pool", write_pool, x, y, args.jobs),
                measure(base, "pngs", write_pngs, x, y, args.jobs)]
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"# {args.images:,} images 48x48, local remote, -j {args.jobs}")  # noqa: T201
    for r in rows:
        print(f"{r['layout']:<5} {r['files']:>7,} files {r['mib']:8.1f} MiB: dvc add "  # noqa: T201
              f"{r['add']:7.1f} s, push {r['push']:7.1f} s, pull {r['pull']:7.1f} s")
    ours, png = rows
    print(f"push + pull: pngs / pool = "  # noqa: T201
          f"{(png['push'] + png['pull']) / (ours['push'] + ours['pull']):.1f}x")


if __name__ == "__main__":
    main()
