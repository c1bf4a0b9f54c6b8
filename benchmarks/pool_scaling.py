"""Generating and scoring a synthetic pool of N images: wall time and peak memory, for several N.

    python benchmarks/pool_scaling.py [--sizes 100000 300000 1000000] [--dir /tmp/pools]

Each N runs in a fresh process (so its peak resident memory is its own): ``make_pool`` with a
DCGAN (width 16, random weights: the cost does not depend on what it learnt) on 48x48 grey
images, 7 classes, then ``run_score`` with a small_cnn scorer (width 32) and the default score
params, as the generate and score stages do (the pool memory-mapped, read a batch at a time).
Prints seconds and peak RSS per stage and N, and the time per 100k images (linear means flat).
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


def child(n: int, work: Path, stage: str) -> None:
    """One stage for one N, in this process."""
    import numpy as np
    import torch

    from ganaug.config import GanConfig, ScoreConfig
    from ganaug.data import Prepared
    from ganaug.gan import family_for
    from ganaug.gan.family import LoadedGan
    from ganaug.models import CLASSIFIERS
    from ganaug.pool import load_pool, load_sources, make_pool
    from ganaug.scoring import run_score, save_scores

    torch.manual_seed(0)
    k, per_class = 7, n // 7
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (700, 1, 48, 48), dtype=np.uint8)
    y = np.arange(700) % k
    data = Prepared(splits={s: (x, y) for s in ("train", "val", "test")},
                    classes=[str(c) for c in range(k)], meta={})
    family = family_for(GanConfig(arch="dcgan", z_dim=64, width=16), k, (1, 48, 48))
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
        result = run_score(images, labels, load_sources(work / "pool", len(labels)), scorer, gan,
                           data, ScoreConfig(batch_size=1024), device)
        save_scores(work / "scores", result.scores)
    seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB
    print(json.dumps({"n": per_class * k, "stage": stage, "seconds": seconds,  # noqa: T201
                      "peak_rss_mib": rss}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    p.add_argument("--dir", type=Path, default=None, help="where the pools go (default: a temp dir)")
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(int(args.child[0]), Path(args.child[1]), args.child[2])
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
                out = subprocess.run([sys.executable, __file__, "--child", str(n), str(work), stage],
                                     capture_output=True, text=True, check=True)
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
