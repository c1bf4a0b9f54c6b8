"""Stage select@<strategy>-<ratio>: choose K = ratio x (real count) pool images per class.
Writes the chosen pool indices (no image copies) and stats of the chosen set."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ganaug.config import SCORE_STRATEGIES, SELECT_CONFIGS, ParamsError
from ganaug.data import load_prepared
from ganaug.fid import compare
from ganaug.io import DataFileError, load_npz, save_json, save_npy
from ganaug.selection import choose
from ganaug.stage import exit_with, load_section, parser, read_params


def build_parser():
    p = parser(__doc__)
    p.add_argument("--strategy", required=True)
    p.add_argument("--ratio", required=True, type=float)
    p.add_argument("--scores", required=True, help="score directory (scores.csv, features.npz)")
    p.add_argument("--pool", required=True, help="pool directory (the rl strategy looks at images)")
    p.add_argument("--data", required=True, help="prepared source npz (real class counts)")
    p.add_argument("--out", required=True, help="npy of chosen pool indices")
    p.add_argument("--stats", required=True, help="JSON stats of the chosen set")
    return p


def declared_params(args) -> list[str]:
    return [f"select.{args.strategy}", "score.kid_subset_size", "score.kid_subsets", "device"]


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    if args.strategy not in SELECT_CONFIGS:
        raise ParamsError(f"unknown strategy {args.strategy!r}; known: {', '.join(SELECT_CONFIGS)}")
    if not np.isfinite(args.ratio) or args.ratio <= 0:
        raise ParamsError(f"ratio must be a positive number, got {args.ratio}")
    params = read_params(declared_params(args), args.params)
    cfg = load_section(params, f"select.{args.strategy}", SELECT_CONFIGS[args.strategy])
    data = load_prepared(args.data)
    scores = _read_scores(f"{args.scores}/scores.csv")
    feats = load_npz(f"{args.scores}/features.npz", ("pool", "real"))

    if args.strategy in SCORE_STRATEGIES:
        chosen, stats = choose(scores, data.class_counts("train"), args.ratio, args.strategy, cfg,
                               data.classes)
    else:
        chosen, stats = choose_with_images(args, params, scores, data, cfg)
    stats["fid_kid_vs_real"] = compare(
        feats["real"], feats["pool"][chosen], feature_space="scorer",
        subset_size=params["score"]["kid_subset_size"], subsets=params["score"]["kid_subsets"],
        seed=0)
    stats.update(strategy=args.strategy, ratio=args.ratio)
    save_npy(args.out, chosen)
    save_json(args.stats, stats)


def choose_with_images(args, params: dict, scores: pd.DataFrame, data, cfg):
    """Strategies that look at the pool's images (rl): torch, the device and a seed."""
    from ganaug.pool import load_pool
    from ganaug.rl import choose_rl
    from ganaug.runtime import resolve_device, set_determinism

    device = resolve_device(params["device"])
    set_determinism(cfg.seed)
    images, labels, _ = load_pool(args.pool)
    return choose_rl(images, labels, scores, data, args.ratio, cfg, device)


def _read_scores(path: str) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except FileNotFoundError as exc:
        raise DataFileError(f"{path}: file not found") from exc


if __name__ == "__main__":
    exit_with(main)
