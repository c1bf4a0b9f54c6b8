"""One command for a GPU machine: the whole FER2013 study on one GPU, timed, with the GPU's
utilisation sampled, and the images/s of every training stage.

    python benchmarks/gpu_study.py /tmp/fer2013-gpu [--fer ../shared/data/fer2013.npz]
        [--params presets/fer2013.yaml] [--set KEY=VALUE ...] [--quick]

It makes a fresh git + DVC copy of this project (benchmarks/run_study.py), links the FER2013
file in as data/raw/fer2013.npz (the npz benchmark format, or Kaggle's fer2013.csv when --fer
names a .csv), runs ``dvc repro`` while ``nvidia-smi`` samples the GPU every second, and prints:
the wall time; per stage instance, its seconds and the images/s its log lines report (training
epochs and GAN steps); the GPU's mean and peak utilisation and memory. Without a GPU it says so
and stops, unless ``--allow-cpu`` (for testing the script itself). ``--quick`` shrinks the study
(one seed, two ratios, short training) to check a machine in minutes.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from run_study import make_repo  # noqa: E402

NPZ_DATASET = {"kind": "npz", "path": "data/raw/fer2013.npz",
               "parts": [{"x": "x_train", "y": "y_train", "split": "train"},
                         {"x": "x_test", "y": "y_test", "split_by": "test_split",
                          "split_map": {"PublicTest": "val", "PrivateTest": "test"}}],
               "drop_test_duplicates": True}
QUICK = ["study.seeds=[0, 1]", "study.ratios=[0.5, 1]", "study.synthetic_only_ratio=1",
         "gan.steps=300", "classifier.epochs=3", "scorer.epochs=3"]
RUNNING = re.compile(r"Running stage '([^']+)'")
RATE = re.compile(r"([0-9.]+) images/s")


class GpuSampler(threading.Thread):
    """``nvidia-smi`` utilisation and memory every second, until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu,memory.used",
                                  "--format=csv,noheader,nounits"], capture_output=True,
                                 text=True)
            if out.returncode == 0 and out.stdout.strip():
                util, mem = out.stdout.strip().splitlines()[0].split(",")
                self.samples.append((float(util), float(mem)))
            self.stop.wait(1.0)


def has_gpu() -> bool:
    if shutil.which("nvidia-smi") is None:
        return False
    return subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode == 0


def run_and_time(dest: Path) -> tuple[float, dict[str, dict]]:
    """``dvc repro`` in ``dest``; per stage instance: seconds and the images/s its log reports."""
    env = {"PYTHONPATH": str(dest / "src"), "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"}
    import os

    env = {**os.environ, **env}
    proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro"], cwd=dest, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    stages: dict[str, dict] = {}
    current, started, t0 = None, time.monotonic(), time.monotonic()
    assert proc.stdout is not None
    with (dest / "repro.log").open("w") as log:
        for line in proc.stdout:
            log.write(line)
            m = RUNNING.search(line)
            if m:
                now = time.monotonic()
                if current:
                    stages[current]["seconds"] = now - started
                current, started = m.group(1), now
                stages[current] = {"seconds": None, "rates": []}
            elif current and (r := RATE.search(line)):
                stages[current]["rates"].append(float(r.group(1)))
    if current:
        stages[current]["seconds"] = time.monotonic() - started
    if proc.wait() != 0:
        sys.exit(f"dvc repro failed; see {dest / 'repro.log'}")
    return time.monotonic() - t0, stages


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("dest", type=Path)
    p.add_argument("--fer", type=Path, default=ROOT.parent / "shared/data/fer2013.npz")
    p.add_argument("--params", type=Path, default=ROOT / "presets/fer2013.yaml")
    p.add_argument("--set", action="append", default=[], dest="sets")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--allow-cpu", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    gpu = has_gpu()
    if not gpu and not args.allow_cpu:
        sys.exit("no GPU here (nvidia-smi finds none); this benchmark is for a GPU machine")
    if not args.fer.is_file():
        sys.exit(f"{args.fer}: FER2013 not found (--fer: the npz benchmark file or fer2013.csv)")
    sets = list(args.sets) + (QUICK if args.quick else [])
    if args.fer.suffix == ".npz":
        sets.append("datasets.fer2013=" + json.dumps(NPZ_DATASET))
    sets += ["device=auto"] if gpu else ["device=cpu"]
    make_repo(args.dest, args.params, [f"data/raw/fer2013{args.fer.suffix}={args.fer}"], sets)
    sampler = GpuSampler()
    if gpu:
        sampler.start()
    wall, stages = run_and_time(args.dest)
    sampler.stop.set()
    print(f"dvc repro: {wall:.0f} s, {len(stages)} stage instances")  # noqa: T201
    for name, info in stages.items():
        rate = f", {sum(info['rates']) / len(info['rates']):.0f} images/s" if info["rates"] else ""
        print(f"  {name:<40} {info['seconds']:8.1f} s{rate}")  # noqa: T201
    if sampler.samples:
        util = [u for u, _ in sampler.samples]
        mem = [m for _, m in sampler.samples]
        print(f"GPU utilisation: mean {sum(util) / len(util):.0f}%, peak {max(util):.0f}%; "  # noqa: T201
              f"memory peak {max(mem):.0f} MiB ({len(util)} samples)")
    (args.dest / "gpu_study.json").write_text(json.dumps(
        {"wall_seconds": wall, "stages": stages, "gpu_samples": sampler.samples}, indent=1))


if __name__ == "__main__":
    main()
