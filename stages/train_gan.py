"""Stage train_gan: a class-conditional GAN (or one GAN per class) on the real train split, with
loss curves (dvclive) and fixed-noise sample grids as DVC plots.

Each replicate trains its own GAN on its own subset when ``study.vary`` has ``gan``. Held fixed,
every replicate trains the same GAN: on the prepared train split (``--prepared``), with
``gan.seed``; the first instance stores the run and the others copy it (ganaug.shared)."""

from __future__ import annotations

import numpy as np
import torch

from ganaug.checkpoints import save_checkpoint
from ganaug.data import load_prepared
from ganaug.gan import family_for, gan_config
from ganaug.gan.train import progress_samples, train_gan
from ganaug.grids import grid, save_png, upscale_for
from ganaug.replicates import vary_of, with_seed
from ganaug.resume import discard_resume
from ganaug.runtime import resolve_device, set_determinism, set_threads
from ganaug.shared import run_key, shared_run, stage_code
from ganaug.stage import exit_with, parser, read_params


def build_parser():
    p = parser(__doc__)
    p.add_argument("--data", required=True, help="the replicate's prepared npz (its subset)")
    p.add_argument("--prepared", help="the prepared source npz: the GAN's data when study.vary "
                   "holds gan fixed (default: --data)")
    p.add_argument("--out", required=True, help="GAN checkpoint to write (generator + discriminator)")
    p.add_argument("--plots", required=True, help="directory for loss curves and sample grids")
    p.add_argument("--resume", help="resume checkpoint (kept outside DVC outputs)")
    p.add_argument("--replicate", type=int, default=0,
                   help="the replicate (a study seed): seeds follow study.vary")
    return p


def declared_params(args) -> list[str]:
    return ["gan", "study.vary", "device", "threads"]


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    params = read_params(declared_params(args), args.params)
    vary = vary_of(params)
    cfg = with_seed(gan_config(params["gan"]), args.replicate, "gan", vary)
    device = resolve_device(params["device"])
    set_threads(params["threads"])
    set_determinism(cfg.seed)
    shared = "gan" not in vary
    data = load_prepared(args.prepared if shared and args.prepared else args.data)
    x, y = data.split("train")
    family = family_for(cfg, data.num_classes, data.image_shape)  # checks before writing
    if not shared:
        _train(args, cfg, data, x, y, device, replicate=args.replicate)
        return
    key = run_key("train_gan", cfg, x, y, data.classes, str(device),
                  stage_code(__file__, type(family).__module__))
    shared_run(key, {"gan.pt": args.out, "plots": args.plots},
               lambda: _train(args, cfg, data, x, y, device, replicate=None),
               what=f"train_gan (replicate {args.replicate})")
    discard_resume(args.resume)


def _train(args, cfg, data, x, y, device, replicate: int | None) -> None:
    """Train, then write the checkpoint and the plots. ``replicate`` None: one GAN that every
    replicate shares (its files then name none)."""
    from dvclive import Live

    with Live(dir=args.plots, save_dvc_exp=False, dvcyaml=None, report=None) as live:
        def on_log(step: int, rec: dict) -> None:
            live.step = step
            for name, value in rec.items():
                if name != "step":
                    live.log_metric(name, value)
            live.make_summary()

        result = train_gan(x, y, data.num_classes, cfg, device, args.resume, on_log)

    scale = upscale_for(x.shape[-1])
    per_class = 10
    samples = progress_samples(result.family, result.generator, x, y, per_class, cfg.seed + 1,
                               device)
    save_png(f"{args.plots}/samples.png", grid(samples, nrow=per_class, scale=scale))
    # One row per checkpoint, one column per class: how the fixed noise evolved.
    progress = torch.cat(result.progress)
    save_png(f"{args.plots}/progress.png", grid(progress, nrow=data.num_classes, scale=scale))
    save_png(f"{args.plots}/real.png", grid(_real_examples(x, y, data.num_classes, per_class),
                                            nrow=per_class, scale=scale))
    save_checkpoint(args.out, result.payload(meta={
        "classes": data.classes, "steps": cfg.steps, "replicate": replicate, "seed": cfg.seed,
        "final": result.history[-1] if result.history else {},
    }))
    discard_resume(args.resume)


def _real_examples(x: np.ndarray, y: np.ndarray, num_classes: int, per_class: int) -> np.ndarray:
    rows = []
    for c in range(num_classes):
        members = x[y == c][:per_class]
        pad = np.zeros((per_class - len(members), *x.shape[1:]), np.uint8)
        rows.append(np.concatenate([members, pad]))
    return np.concatenate(rows)


if __name__ == "__main__":
    exit_with(main)
