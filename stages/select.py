"""Stage select@<strategy>-<ratio>: choose K = ratio x (real count) pool images per class.
Writes the chosen pool indices (no image copies) and stats of the chosen set."""

from __future__ import annotations

import numpy as np

from ganaug.data import load_prepared
from ganaug.errors import ParamsError
from ganaug.io import save_json, save_npy
from ganaug.replicates import seed_for, vary_of, with_seed
from ganaug.runtime import set_threads
from ganaug.selection import STRATEGIES, Candidates, choose
from ganaug.stage import exit_with, load_section, parser, read_params
from ganaug.synthetic.pool import load_pool
from ganaug.synthetic.scoring import chosen_vs_real, load_scores


def build_parser():
    p = parser(__doc__)
    p.add_argument("--strategy", required=True)
    p.add_argument("--ratio", required=True, type=float)
    p.add_argument("--scores", required=True, help="score directory (scores.csv, features.npz)")
    p.add_argument("--pool", required=True, help="pool directory (strategies may look at images)")
    p.add_argument("--data", required=True, help="prepared source npz (real class counts)")
    p.add_argument("--out", required=True, help="npy of chosen pool indices")
    p.add_argument("--stats", required=True, help="JSON stats of the chosen set")
    p.add_argument("--replicate", type=int, default=0,
                   help="the replicate (a study seed): seeds follow study.vary")
    return p


def declared_params(args) -> list[str]:
    return [f"select.{args.strategy}", "score.kid_subset_size", "score.kid_subsets",
            "score.seed", "study.vary", "device", "threads"]


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    strategy = STRATEGIES.get(args.strategy)
    if not np.isfinite(args.ratio) or args.ratio <= 0:
        raise ParamsError(f"--ratio: must be a positive number, got {args.ratio}")
    params = read_params(declared_params(args), args.params)
    set_threads(params["threads"])
    vary = vary_of(params)
    cfg = load_section(params, f"select.{args.strategy}", strategy.config)
    if hasattr(cfg, "seed"):
        cfg = with_seed(cfg, args.replicate, "gan", vary)
    score_params = {**params["score"],
                    "seed": seed_for(params["score"]["seed"], args.replicate, "gan", vary)}
    data = load_prepared(args.data)
    scores = load_scores(args.scores)
    images, _, _ = load_pool(args.pool)
    candidates = Candidates(scores=scores.table, features=scores.pool_features, images=images,
                            real=data, device=params["device"], classes=data.classes)
    chosen, stats = choose(candidates, data.class_counts("train"), args.ratio, args.strategy, cfg)
    stats["fid_kid_vs_real"] = chosen_vs_real(scores, chosen, score_params)
    stats.update(strategy=args.strategy, ratio=args.ratio, replicate=args.replicate)
    save_npy(args.out, chosen)
    save_json(args.stats, stats)


if __name__ == "__main__":
    exit_with(main)
