"""Stage prepare@<dataset>: load a dataset, split it, apply scarcity (source only), write one npz."""

from __future__ import annotations

from ganaug.configs.data import DataConfig
from ganaug.data import save_prepared
from ganaug.data.prepare import parse_dataset_config, prepare
from ganaug.stage import exit_with, load_section, parser, read_params


def build_parser():
    p = parser(__doc__)
    p.add_argument("--name", required=True, help="dataset key under `datasets:` in params")
    p.add_argument("--out", required=True, help="prepared npz to write")
    return p


def declared_params(args) -> list[str]:
    return ["data", f"datasets.{args.name}"]


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    params = read_params(declared_params(args), args.params)
    data_cfg = load_section(params, "data", DataConfig)
    dataset_cfg = parse_dataset_config(args.name, params["datasets"][args.name])
    save_prepared(args.out, prepare(args.name, dataset_cfg, data_cfg))


if __name__ == "__main__":
    exit_with(main)
