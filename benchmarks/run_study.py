"""Run the study with a params file in a fresh git + DVC repo (a copy of this project), timed.

    python benchmarks/run_study.py PARAMS DEST [--link REL=TARGET ...] [--set KEY=VALUE ...]
        [--cache DIR] [TARGET ...]

``--link data/raw/fer2013.npz=../shared/data/fer2013.npz`` symlinks a dataset into the copy (the
target is resolved from the current directory). ``--set gan.arch=wgan_gp`` overrides (or adds) one params key
(the value is read as YAML) and ``--set ~gan.wgan_gp`` removes one, like ``dvc exp run -S``. TARGETs (stage names, as for ``dvc repro``)
reproduce only those stages and what they need. ``--cache DIR`` makes the copy use a DVC cache
shared with other copies (``dvc config --local cache.dir``): its run-cache then restores a stage
another study already ran with the same deps, params and code (the scorer, the real-only runs)
instead of training it again. Prints the wall time of ``dvc repro`` and writes
it to DEST/timing.json; results are in DEST/metrics/summary.json and DEST/plots/report/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from e2e import make_study, read_yaml  # noqa: E402  (the project copy the end-to-end tests use)


def override(params: dict, assignment: str) -> None:
    """``KEY=VALUE`` sets a dotted key; ``~KEY`` removes it (as ``dvc exp run -S`` does), e.g.
    the section of the GAN family a study switches away from (``~gan.wgan_gp``)."""
    remove = assignment.startswith("~")
    key, sep, value = assignment.removeprefix("~").partition("=")
    if not sep and not remove:
        sys.exit(f"--set {assignment}: expected KEY=VALUE or ~KEY")
    *parents, leaf = key.split(".")
    node = params
    for i, part in enumerate(parents):
        if part not in node and i > 0:  # a family's section, e.g. gan.stargan
            node[part] = {}
        if not isinstance(node.get(part), dict):
            sys.exit(f"--set {assignment}: {part!r} is not a section of the params file")
        node = node[part]
    if remove:
        node.pop(leaf, None)
        return
    # A key the file lacks is added (a family's own knob, e.g. gan.diffaugment); the check_params
    # stage then refuses it if it is misspelt or misplaced, naming the key.
    node[leaf] = yaml.safe_load(value)


def make_repo(dest: Path, params: Path, links: list[str], sets: list[str]) -> None:
    if dest.exists():
        sys.exit(f"{dest} exists; choose a new directory")
    values = read_yaml(params)
    for assignment in sets:
        override(values, assignment)
    targets = []
    for link in links:
        rel, _, target = link.partition("=")
        target_path = Path(target).resolve()
        if not target_path.exists():
            sys.exit(f"--link {link}: {target_path} does not exist")
        targets.append((rel, target_path))
    make_study(dest, values)
    for rel, target_path in targets:  # data/raw is git-ignored: the links stay out of the commit
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).symlink_to(target_path)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("params", type=Path)
    p.add_argument("dest", type=Path)
    p.add_argument("--link", action="append", default=[], help="REL=TARGET symlink into the copy")
    p.add_argument("--set", action="append", default=[], dest="sets",
                   help="KEY=VALUE params override, KEY dotted (gan.arch=wgan_gp)")
    p.add_argument("--cache", type=Path, help="a DVC cache directory shared between studies")
    p.add_argument("targets", nargs="*", help="stages to reproduce, as for dvc repro (default: all)")
    args = p.parse_intermixed_args(argv)  # targets may follow the options
    make_repo(args.dest, args.params, args.link, args.sets)
    env = {**os.environ, "PYTHONPATH": str(args.dest / "src")}
    if args.cache:
        args.cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "dvc", "config", "--local", "cache.dir",
                        str(args.cache.resolve())], cwd=args.dest, env=env, check=True)
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "dvc", "repro", *args.targets], cwd=args.dest,
                          env=env)
    wall = time.monotonic() - start
    (args.dest / "timing.json").write_text(json.dumps(
        {"dvc_repro_seconds": round(wall, 1), "exit_status": proc.returncode}) + "\n")
    print(f"dvc repro: {wall:.0f} s, exit status {proc.returncode}")
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
