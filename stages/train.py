"""Stage train@<strategy>-<ratio>-<seed> (real + selected synthetic), train_baseline@<seed> (real
only), train_synthetic@<strategy>-<seed> (selected synthetic only: the Classification Accuracy
Score) and train_real@<size>-<seed> (real only, the first <size> real images per class of the
nested order: the learning curve). Validation always uses the real validation split."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ganaug.configs.train import ClassifierConfig
from ganaug.data import load_prepared
from ganaug.errors import ParamsError
from ganaug.io import DataFileError, load_npy
from ganaug.models.saved import classifier_payload, member_seeds, save_checkpoint
from ganaug.replicates import seed_for, vary_of
from ganaug.runtime import resolve_device, set_determinism, set_threads
from ganaug.stage import exit_with, load_section, parser, read_params
from ganaug.synthetic.pool import load_pool, load_selected
from ganaug.training import discard_resume, live_curves, train_classifier


def build_parser():
    p = parser(__doc__)
    p.add_argument("--real", required=True, help="prepared source npz")
    p.add_argument("--pool", help="pool directory (with --selection)")
    p.add_argument("--selection", help="npy of chosen pool indices")
    p.add_argument("--selected", help="npz of selected images x and labels y (a refinement round)")
    p.add_argument("--synthetic-only", action="store_true", help="train on the selection alone")
    p.add_argument("--real-per-class", type=int,
                   help="real images: the first N per class of the prepared file's nested order "
                        "(train split, then reserve) instead of the train split")
    p.add_argument("--replicate", type=int, default=0,
                   help="the replicate (a study seed): its classifier seed follows study.vary")
    p.add_argument("--out", required=True, help="classifier checkpoint to write")
    p.add_argument("--resume", help="resume checkpoint (kept outside DVC outputs); member m > 0 "
                                    "of classifier.members uses <stem>-member<m><suffix>")
    p.add_argument("--plots", help="directory for the training curves (dvclive) of member 0")
    return p


def declared_params(args) -> list[str]:
    return ["classifier", "study.vary", "device", "threads"]


def training_set(args, data) -> tuple[np.ndarray, np.ndarray, dict]:
    """Real train images plus the selected pool images (or the selection alone)."""
    x_real, y_real = real_images(args, data)
    if args.selected is not None:
        x_syn, y_syn = load_selected(args.selected)
    elif args.selection is not None:
        x_syn, y_syn = selected_from_pool(args.pool, args.selection)
    else:
        return x_real, y_real, {"real": int(len(y_real)), "synthetic": 0}
    if x_syn.shape[1:] != x_real.shape[1:]:
        raise ValueError(f"synthetic images {x_syn.shape[1:]} do not match the real ones "
                         f"{x_real.shape[1:]}")
    if args.synthetic_only:
        return x_syn, y_syn, {"real": 0, "synthetic": int(len(y_syn))}
    return (np.concatenate([x_real, x_syn]), np.concatenate([y_real, y_syn]),
            {"real": int(len(y_real)), "synthetic": int(len(y_syn))})


def real_images(args, data) -> tuple[np.ndarray, np.ndarray]:
    """The train split, or the learning curve's nested subset of ``--real-per-class`` images."""
    if args.real_per_class is None:
        return data.split("train")
    if args.real_per_class < 1:
        raise ParamsError(f"--real-per-class must be >= 1, got {args.real_per_class}")
    try:
        return data.nested_subset(args.real_per_class)
    except DataFileError as exc:
        raise DataFileError(f"{args.real}: {exc}") from exc
    except ValueError as exc:
        raise ParamsError(f"study.real_sizes: {exc} in {args.real}; use sizes up to the "
                          f"smallest class") from exc


def selected_from_pool(pool: str | None, selection: str) -> tuple[np.ndarray, np.ndarray]:
    if pool is None:
        raise ValueError("--selection needs --pool")
    images, labels, _ = load_pool(pool)
    chosen = np.sort(load_npy(selection))
    if chosen.ndim != 1 or (len(chosen) and (chosen.min() < 0 or chosen.max() >= len(labels))):
        raise ValueError(f"{selection}: indices must lie in [0, {len(labels)})")
    return np.asarray(images[chosen]), labels[chosen]


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    params = read_params(declared_params(args), args.params)
    cfg = load_section(params, "classifier", ClassifierConfig)
    device = resolve_device(params["device"])
    set_threads(params["threads"])
    seed = seed_for(0, args.replicate, "classifier", vary_of(params))
    data = load_prepared(args.real)
    x, y, counts = training_set(args, data)
    results = []
    for m, member_seed in enumerate(member_seeds(seed, cfg.members)):
        set_determinism(member_seed)
        with live_curves(args.plots if m == 0 else None) as on_epoch:
            results.append(train_classifier(
                x, y, *data.split("val"), data.num_classes, cfg, member_seed, device,
                resume_path=member_path(args.resume, m), on_epoch=on_epoch,
                name=Path(args.out).stem + (f" member {m}" if m else "")))
    meta = {"classes": data.classes, "replicate": args.replicate, "seed": seed, "train_counts": counts,
            "real_per_class": args.real_per_class,
            "selection": args.selection or args.selected, "synthetic_only": args.synthetic_only,
            "epoch_images": cfg.epoch_images, "member_count": cfg.members, **results[0].summary}
    if cfg.members > 1:
        meta["members"] = [{"seed": s, **r.summary}
                           for s, r in zip(member_seeds(seed, cfg.members), results, strict=True)]
    save_checkpoint(args.out, classifier_payload(results[0].model, cfg.arch, results[0].arch_kwargs,
                                                 meta, more=[r.model for r in results[1:]]))
    for m in range(cfg.members):
        discard_resume(member_path(args.resume, m))


def member_path(resume: str | None, member: int) -> str | None:
    """Member 0 resumes from ``resume`` itself; member m from ``<stem>-member<m><suffix>``."""
    if resume is None or member == 0:
        return resume
    path = Path(resume)
    return str(path.with_name(f"{path.stem}-member{member}{path.suffix}"))

if __name__ == "__main__":
    exit_with(main)
