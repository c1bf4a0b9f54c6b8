"""Train one GAN family on low-data FER2013 and look at it: a sample grid per checkpoint, the
losses, seconds per step, and the pool's spread and scorer-free pixel statistics.

    python benchmarks/gan_preview.py OUT [--per-class 100] [--steps 1000] [--set gan.KEY=VALUE ...]

The GAN params start from benchmarks/fer2013_cpu.yaml's ``gan`` section; ``--set`` overrides keys
(values read as YAML; a family's knob as ``gan.stargan.res_blocks=2``), ``--set ~gan.wgan_gp``
removes one (the section of the file's family when another is previewed). Writes OUT/samples_<step>.png (rows: classes; for a translation family:
the source image first, then its translation into every class) and OUT/preview.json. Needs
../shared/data/fer2013.npz (the benchmark data; never committed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from ganaug.gan import gan_config
from ganaug.gan.train import progress_samples, train_gan
from ganaug.grids import grid, save_png

ROOT = Path(__file__).resolve().parents[1]
FER = ROOT.parent / "shared" / "data" / "fer2013.npz"


def low_data(per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    z = np.load(FER, allow_pickle=False)
    x, y = z["x_train"], z["y_train"].astype(np.int64)
    rng = np.random.default_rng(seed)
    keep = np.sort(np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False)
                                   for c in range(7)]))
    return x[keep][:, None], y[keep], [str(c) for c in z["classes"]]


def translation_grid(result, x: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """Rows: one real source per class; columns: the source, then its translation to each class."""
    gen = result.generator.eval()
    rows = []
    with torch.no_grad():
        for c in range(k):
            src = torch.from_numpy(x[np.flatnonzero(y == c)[:1]]).float().div(127.5).sub(1)
            outs = [gen(src, torch.tensor([t])) for t in range(k)]
            row = torch.cat([src, *outs])
            rows.append(((row.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8))
    return grid(torch.cat(rows).numpy(), nrow=k + 1, scale=2)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--per-class", type=int, default=100)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--set", action="append", default=[], metavar="gan.KEY=VALUE")
    args = p.parse_args()
    if not FER.is_file():
        sys.exit(f"{FER}: the benchmark data is not here")
    torch.set_num_threads(torch.get_num_threads())
    params = yaml.safe_load((ROOT / "benchmarks/fer2013_cpu.yaml").read_text())["gan"]
    params.update(steps=args.steps, checkpoint_every=max(1, args.steps // 5),
                  log_every=max(1, args.steps // 20))
    for assignment in args.set:
        key, _, value = assignment.removeprefix("~").partition("=")
        *parents, leaf = key.removeprefix("gan.").split(".")
        node = params
        for part in parents:
            node = node.setdefault(part, {})
        if assignment.startswith("~"):
            node.pop(leaf, None)
        else:
            node[leaf] = yaml.safe_load(value)
    cfg = gan_config(params)
    x, y, classes = low_data(args.per_class)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    result = train_gan(x, y, len(classes), cfg, torch.device("cpu"))
    seconds = time.perf_counter() - start
    for i, frame in enumerate(result.progress):
        save_png(args.out / f"progress_{i}.png", grid(frame, nrow=len(classes), scale=2))
    samples = progress_samples(result.family, result.generator.eval(), x, y, 8, cfg.seed + 1,
                               torch.device("cpu"))
    save_png(args.out / "samples.png", grid(samples, nrow=8, scale=2))
    if result.family.translates:
        save_png(args.out / "translations.png", translation_grid(result, x, y, len(classes)))
    real = x.astype(np.float64) / 255
    fake = samples.numpy().astype(np.float64) / 255
    report = {"arch": cfg.arch, "params": params, "per_class": args.per_class,
              "seconds": round(seconds, 1), "seconds_per_step": round(seconds / cfg.steps, 3),
              "threads": torch.get_num_threads(), "last": result.history[-1],
              "pixel_std_real": float(real.std(0).mean()),
              "pixel_std_samples": float(fake.std(0).mean())}
    (args.out / "preview.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))  # noqa: T201 - the benchmark's answer


if __name__ == "__main__":
    main()
