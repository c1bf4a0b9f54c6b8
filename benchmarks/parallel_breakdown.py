"""Where the time of ``benchmarks/time_parallel.sh`` went, per stage kind, in both runs.

    python benchmarks/parallel_breakdown.py DEST

Sequential (``DEST/sequential``): ``dvc repro`` logs no times, so each stage's time is read from
its outputs' modification times: the gap since the previous stage's outputs (command plus DVC's
own work for that stage; +-1 s). Parallel (``DEST/parallel/parallel.log``): each instance's own
duration on its worker, and when the critical path's stages finished.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import yaml

DONE = re.compile(r"^(\d\d:\d\d:\d\d) .*\] done +(\S+) in ([\d.]+) s")
FIRST = re.compile(r"^(\d\d:\d\d:\d\d) ")
CRITICAL = ("train_gan", "generate", "score", "report")


def kind(name: str) -> str:
    return name.split("@")[0]


def finished_at(repo: Path, outs: list[dict]) -> float:
    times = []
    for out in outs:
        path = repo / out["path"]
        files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
        times += [p.stat().st_mtime for p in files if p.exists()]
    return max(times)


def sequential(repo: Path) -> dict[str, float]:
    stages = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    ends = sorted((finished_at(repo, s["outs"]), name) for name, s in stages.items())
    per_kind: dict[str, float] = defaultdict(float)
    for (before, _), (end, name) in zip(ends[:-1], ends[1:], strict=True):
        per_kind[kind(name)] += end - before
    return per_kind


def parallel(log: Path) -> tuple[dict[str, float], dict[str, float], float]:
    lines = log.read_text().splitlines()
    clock = [datetime.strptime(m.group(1), "%H:%M:%S") for ln in lines if (m := FIRST.match(ln))]
    start = clock[0]
    per_kind: dict[str, float] = defaultdict(float)
    when: dict[str, float] = {}
    for line in lines:
        if m := DONE.match(line):
            per_kind[kind(m.group(2))] += float(m.group(3))
            when[m.group(2)] = (datetime.strptime(m.group(1), "%H:%M:%S") - start).seconds
    return per_kind, when, (clock[-1] - start).seconds


def main(dest: Path) -> None:
    seq = sequential(dest / "sequential")
    par, when, wall = parallel(dest / "parallel" / "parallel.log")
    print(f"{'stage kind':<20} {'sequential s':>13} {'parallel, sum over instances s':>31}")
    for name in sorted(set(seq) | set(par), key=lambda k: -seq.get(k, 0)):
        print(f"{name:<20} {seq.get(name, 0):>13.0f} {par.get(name, 0):>31.0f}")
    print(f"{'total':<20} {sum(seq.values()):>13.0f} {sum(par.values()):>31.0f}")
    marks = ", ".join(f"{s} at {when[s]:.0f} s" for s in CRITICAL if s in when)
    print(f"parallel: {marks}; last line at {wall} s")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
