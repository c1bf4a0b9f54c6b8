"""Generating and scoring a synthetic pool of N images: wall time and peak memory, for several N.

    python benchmarks/pool_scaling.py [--sizes 100000 300000 1000000] [--dir /tmp/pools]

Each N runs in a fresh process (so its peak resident memory is its own): ``make_pool`` with a
DCGAN (width 16, random weights: the cost does not depend on what it learnt) on 48x48 grey
images, 7 classes, then ``run_score`` with a small_cnn scorer (width 32) and the default score
params, as the generate and score stages do (the pool memory-mapped, read a batch at a time).
Prints seconds and peak RSS per stage and N, and the time per 100k images (linear means flat).
``--steps`` also prints each scoring step's peak RSS (Linux: the high-water mark is reset before
each step through ``/proc/self/clear_refs``), and the peak of the code between steps, to find
the step whose memory grows with N.
The pools are deleted after each N; N = 1M needs about 2.5 GB of disk.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _status_mib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) // 1024
    raise KeyError(key)


STEP_PEAK_MIB = [0]  # the highest step peak: resetting the high-water mark also resets ru_maxrss


LAST_STEP = ["start"]


def gap_peak() -> None:
    """Print (and count) the peak RSS since the last traced step ended, when it is higher than
    what that step left: code outside the traced steps (loading, the lines between steps)."""
    peak = _status_mib("VmHWM")
    STEP_PEAK_MIB[0] = max(STEP_PEAK_MIB[0], peak)
    print(f"  after {LAST_STEP[0]:<20} peak {peak} MiB (up to the next step)", file=sys.stderr,
          flush=True)


def trace_steps() -> None:
    """Wrap the scoring steps so each prints its seconds and peak RSS to stderr."""
    import functools

    from ganaug.synthetic import scoring

    def wrap(name: str) -> None:
        fn = getattr(scoring, name)

        @functools.wraps(fn)
        def traced(*args, **kwargs):
            gap_peak()  # the code between two steps counts too
            before = _status_mib("VmRSS")
            Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            STEP_PEAK_MIB[0] = max(STEP_PEAK_MIB[0], _status_mib("VmHWM"))
            LAST_STEP[0] = name
            print(f"  step {name:<20} {time.perf_counter() - start:8.1f} s, RSS before "
                  f"{before} MiB, peak {_status_mib('VmHWM')} MiB, after {_status_mib('VmRSS')} "
                  "MiB", file=sys.stderr, flush=True)
            return out

        setattr(scoring, name, traced)

    for name in ("score_images", "scorer_features", "fid_report", "prdc_report",
                 "score_summary", "pixel_diversity", "nn_copy_check", "save_scores"):
        wrap(name)


def child(n: int, work: Path, stage: str, steps: bool = False) -> None:
    """One stage for one N, in this process."""
    import numpy as np
    import torch

    from ganaug.configs.score import ScoreConfig
    from ganaug.data import Prepared
    from ganaug.gan import family_for, gan_config
    from ganaug.gan.family import LoadedGan
    from ganaug.models import CLASSIFIERS
    from ganaug.synthetic import scoring
    from ganaug.synthetic.pool import load_pool, load_sources, make_pool

    if steps and stage == "score":
        trace_steps()

    torch.manual_seed(0)
    k, per_class = 7, n // 7
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (700, 1, 48, 48), dtype=np.uint8)
    y = np.arange(700) % k
    data = Prepared(splits={s: (x, y) for s in ("train", "val", "test")},
                    classes=[str(c) for c in range(k)], meta={})
    family = family_for(gan_config({"arch": "dcgan", "width": 16, "dcgan": {"z_dim": 64}}), k,
                        (1, 48, 48))
    nets = family.build().eval()
    gan = LoadedGan(family, nets.generator, nets.discriminator, {})
    device = torch.device("cpu")
    start = time.perf_counter()
    if stage == "generate":
        make_pool(gan, data, per_class, 1024, 0, device, work / "pool", {})
    else:
        scorer = CLASSIFIERS.get("small_cnn")(in_channels=1, num_classes=k, image_size=48,
                                              width=32).eval()
        images, labels, _ = load_pool(work / "pool")
        result = scoring.run_score(images, labels, load_sources(work / "pool", len(labels)), scorer, gan,
                           data, ScoreConfig(batch_size=1024), device)
        scoring.save_scores(work / "scores", result.scores)
    seconds = time.perf_counter() - start
    if steps and stage == "score":
        gap_peak()
    rss = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, STEP_PEAK_MIB[0])  # MiB
    print(json.dumps({"n": per_class * k, "stage": stage, "seconds": seconds,  # noqa: T201
                      "peak_rss_mib": rss}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    p.add_argument("--dir", type=Path, default=None, help="where the pools go (default: a temp dir)")
    p.add_argument("--steps", action="store_true",
                   help="also print each scoring step's seconds and peak RSS (Linux)")
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(int(args.child[0]), Path(args.child[1]), args.child[2], args.steps)
        return
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(dir=args.dir, prefix="pool-scaling-"))
    rows = []
    try:
        for n in args.sizes:
            work = base / str(n)
            work.mkdir()
            for stage in ("generate", "score"):
                cmd = [sys.executable, __file__, "--child", str(n), str(work), stage]
                out = subprocess.run(cmd + ["--steps"] * args.steps, stdout=subprocess.PIPE,
                                     text=True, check=True)  # stderr (--steps, warnings) shown
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
                r = rows[-1]
                print(f"{r['stage']:<9} N={r['n']:>9,}: {r['seconds']:8.1f} s "  # noqa: T201
                      f"({100_000 * r['seconds'] / r['n']:6.1f} s per 100k), peak RSS "
                      f"{r['peak_rss_mib']:7.0f} MiB", flush=True)
            shutil.rmtree(work)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
