"""What plain ``dvc repro`` pays per stage instance besides the work, from fresh copies of this repo.

1. The warm start (ganaug.warmstart): the tiny preset's whole study under ``dvc repro``, warm
   (the default) and cold (``GANAUG_WARM_START=0``), each in a fresh copy; prints both wall
   times, and whether the two runs' ``dvc.lock`` and metrics files have the same bytes.
2. DVC's rewrite of ``dvc.lock``: DVC reads and writes the whole lock after every stage, so each
   instance costs time in proportion to the lock's size. In a clone of this commit (the default
   study's committed lock), ``dvc repro`` of a few trivial stages (``check_params``, ``prepare``,
   ``subset``, and the ``code`` stage where there is one) with that lock, then again after
   deleting it; prints seconds per instance. ``--revs`` measures other commits' locks in the
   same run (before/after a change of the lock's size).

    python benchmarks/repro_overhead.py [--skip-tiny] [--skip-lock] [--revs HEAD 812a239]

Run it in the project's environment, with nothing else running (both parts take one core).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from e2e import REPO_ROOT, THREAD_VARS, make_study  # noqa: E402

TARGETS = ["subset@0", "subset@1", "subset@2"]


def repro(repo: Path, *args: str, **env: str) -> tuple[float, int]:
    full = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    full.update(PYTHONPATH=str(repo / "src"), DVC_NO_ANALYTICS="1", GANAUG_DEVICE="cpu", **env)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "dvc", "repro", *args], cwd=repo, env=full,
                          capture_output=True, text=True)
    took = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"dvc repro {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return took, len(re.findall(r"^Running stage", proc.stdout + proc.stderr, re.M))


def same_results(a: Path, b: Path) -> str:
    differ = [str(p.relative_to(a)) for p in sorted((a / "metrics").rglob("*.json"))
              if p.read_bytes() != (b / p.relative_to(a)).read_bytes()]
    lock = (a / "dvc.lock").read_bytes() == (b / "dvc.lock").read_bytes()
    return f"dvc.lock {'identical' if lock else 'DIFFERS'}; metrics files differing: {differ}"


def tiny(tmp: Path) -> None:
    times = {}
    for mode, env in (("warm", {}), ("cold", {"GANAUG_WARM_START": "0"})):
        repo = make_study(tmp / mode, REPO_ROOT / "presets" / "tiny.yaml")
        times[mode] = repro(repo, **env)
        print(f"tiny preset, dvc repro {mode}: {times[mode][0]:.1f} s, {times[mode][1]} instances",
              flush=True)
    print(f"  cold / warm: {times['cold'][0] / times['warm'][0]:.2f}x; "
          f"{same_results(tmp / 'warm', tmp / 'cold')}")


def lock(tmp: Path, rev: str = "HEAD") -> None:
    repo = tmp / f"clone-{rev}"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    subprocess.run(["git", "checkout", "-q", rev], cwd=repo, check=True)
    size = (repo / "dvc.lock").stat().st_size
    took, n = repro(repo, *TARGETS)
    print(f"{rev}: committed dvc.lock ({size / 1024:.0f} KiB): {n} trivial instances in "
          f"{took:.1f} s, {took / n:.1f} s each", flush=True)
    subprocess.run(["git", "checkout", "-q", "--", "dvc.lock"], cwd=repo, check=True)
    (repo / "dvc.lock").unlink()
    took, n = repro(repo, "-f", *TARGETS)
    size = (repo / "dvc.lock").stat().st_size
    print(f"no dvc.lock to start from (ends at {size / 1024:.0f} KiB): {n} instances in "
          f"{took:.1f} s, {took / n:.1f} s each")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--skip-tiny", action="store_true")
    p.add_argument("--skip-lock", action="store_true")
    p.add_argument("--revs", nargs="+", default=["HEAD"], help="commits whose lock to measure")
    args = p.parse_args()
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                         text=True).stdout.strip()
    print(f"commit {out}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_lock:
            for rev in args.revs:
                lock(Path(tmp), rev)
        if not args.skip_tiny:
            tiny(Path(tmp))


if __name__ == "__main__":
    main()
