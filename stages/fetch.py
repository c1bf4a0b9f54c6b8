"""Stage fetch@<name>: put one external file (pretrained weights) where dvc.yaml tracks it, checked
against the sha256 in params (fetch.<name>). A copy in torch's hub cache is used before the network;
offline, the error says where to place the file by hand."""

from __future__ import annotations

from ganaug.external import FetchConfig, fetch_file
from ganaug.stage import exit_with, load_section, parser, read_params


def build_parser():
    p = parser(__doc__)
    p.add_argument("--name", required=True, help="which file: the key under fetch: in params")
    p.add_argument("--out", required=True, help="where to write it")
    return p


def declared_params(args) -> list[str]:
    return [f"fetch.{args.name}"]


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    params = read_params(declared_params(args), args.params)
    cfg = load_section(params, f"fetch.{args.name}", FetchConfig)
    fetch_file(args.name, cfg.url, cfg.sha256, args.out)


if __name__ == "__main__":
    exit_with(main)
