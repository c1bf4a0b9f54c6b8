"""How the classifier's training protocol moves a paired gain, and where its noise comes from.

Trains the real-only baseline and some mixes of a reproduced default study (its replicates'
subsets, pools and selections: run the study first) with several classifier seeds per replicate,
under two protocols that differ only in ``classifier.epoch_images``:

- ``one pass``: an epoch is one pass over the run's training set (``epoch_images: null``), so a
  mix with 5x synthetic images takes 6x the optimiser steps of the baseline;
- ``equal steps``: every run's epoch is ``--epoch-images`` images (the default study's 1200).

Prints, per protocol and mix, the baseline's and the mix's mean accuracy, the mean paired gain,
the SD of the gain between classifier seeds within a replicate (what ``classifier.members``
averages away), the SD of the replicates' mean gains (what is left: subset and GAN, plus the
within-replicate noise over the seeds), and seconds per run. One member per run (the recipe of
params.yaml's ``classifier`` section otherwise).

    python benchmarks/classifier_protocol.py [--replicates 0 1 2 3] [--seeds 6]
        [--mixes threshold-5 threshold-1 confidence-1 random-5] [--epoch-images 1200]

Run it alone (one thread; two processes on 2 cores slow each other down).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--replicates", type=int, nargs="+", default=[0, 1, 2, 3])
    p.add_argument("--seeds", type=int, default=6, help="classifier seeds per replicate")
    p.add_argument("--mixes", nargs="+", default=["threshold-5", "threshold-1", "confidence-1",
                                                  "random-5"])
    p.add_argument("--epoch-images", type=int, default=1200)
    args = p.parse_args()

    import torch

    from ganaug.configs.train import ClassifierConfig
    from ganaug.data import load_prepared
    from ganaug.metrics.evaluation import evaluate_classifier
    from ganaug.runtime import set_determinism, set_threads
    from ganaug.stage import load_section, read_params
    from ganaug.training import train_classifier
    from stages.train import training_set

    params = read_params(["classifier"], str(ROOT / "params.yaml"))
    recipe = load_section(params, "classifier", ClassifierConfig)
    set_threads(1)
    device = torch.device("cpu")
    print(f"replicates {args.replicates}, {args.seeds} classifier seeds each, one member per run, "
          f"{torch.get_num_threads()} thread")
    for label, per_epoch in (("one pass", None), ("equal steps", args.epoch_images)):
        cfg = dataclasses.replace(recipe, epoch_images=per_epoch)
        acc: dict[tuple[str, int, int], float] = {}
        took: dict[str, list[float]] = {}
        for r in args.replicates:
            subset = ROOT / "data" / "subsets" / f"{r}.npz"
            data = load_prepared(subset)
            x_test, y_test = data.split("test")
            for mix in ["base", *args.mixes]:
                run = types.SimpleNamespace(
                    real=str(subset), real_per_class=None, selected=None, synthetic_only=False,
                    pool=str(ROOT / "data" / "pool" / str(r)),
                    selection=None if mix == "base" else str(
                        ROOT / "data" / "selections" / f"{mix}-{r}.npy"))
                x, y, _ = training_set(run, data)
                for s in range(args.seeds):
                    seed = 1000 + s  # no study replicate uses these classifier seeds
                    set_determinism(seed)
                    started = time.perf_counter()
                    result = train_classifier(x, y, *data.split("val"), data.num_classes, cfg,
                                              seed, device)
                    took.setdefault(mix, []).append(time.perf_counter() - started)
                    acc[mix, r, s] = evaluate_classifier(result.model, x_test, y_test,
                                                         data.classes, 1024, device)["accuracy"]
        print(f"\n{label} (classifier.epoch_images: {per_epoch})")
        base = np.array([[acc["base", r, s] for s in range(args.seeds)]
                         for r in args.replicates]) * 100
        print(f"  baseline {base.mean():.2f}%, SD between seeds {base.std(axis=1, ddof=1).mean():.2f}"
              f", {np.mean(took['base']):.2f} s per run")
        for mix in args.mixes:
            m = np.array([[acc[mix, r, s] for s in range(args.seeds)]
                          for r in args.replicates]) * 100
            gain = m - base
            within = float(np.sqrt(gain.var(axis=1, ddof=1).mean()))
            between = float(gain.mean(axis=1).std(ddof=1))
            print(f"  {mix:>14}: {m.mean():.2f}%, gain {gain.mean():+.2f} points; SD of the gain "
                  f"between seeds of a replicate {within:.2f}, of the replicates' means "
                  f"{between:.2f} (seed noise alone would give {within / np.sqrt(args.seeds):.2f}); "
                  f"{np.mean(took[mix]):.2f} s per run")


if __name__ == "__main__":
    main()
