"""Stage subset@<seed>: one replicate's real data: its own real train split drawn from the
prepared source's training images (when study.vary has ``subset``), the learning curve's nested
order over the rest, and the prepared val and test splits unchanged (see ganaug.replicates)."""

from __future__ import annotations

from ganaug.configs.data import DataConfig
from ganaug.data import load_prepared, save_prepared
from ganaug.replicates import draw_subset, vary_of
from ganaug.stage import exit_with, load_section, parser, read_params


def build_parser():
    p = parser(__doc__)
    p.add_argument("--data", required=True, help="prepared source npz")
    p.add_argument("--replicate", type=int, default=0, help="the replicate (a study seed)")
    p.add_argument("--out", required=True, help="the replicate's prepared npz to write")
    return p


def declared_params(args) -> list[str]:
    return ["data", "study.vary"]


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    params = read_params(declared_params(args), args.params)
    data_cfg = load_section(params, "data", DataConfig)
    vary = vary_of(params)
    save_prepared(args.out, draw_subset(load_prepared(args.data), data_cfg, args.replicate, vary))


if __name__ == "__main__":
    exit_with(main)
