"""Stage generate: a class-balanced synthetic pool, written in batches into a few large files."""

from __future__ import annotations

from ganaug.config import GenerateConfig
from ganaug.data import load_prepared
from ganaug.gan import load_gan
from ganaug.pool import generate_pool, pool_size_per_class
from ganaug.runtime import resolve_device, set_determinism
from ganaug.stage import exit_with, load_section, parser, read_params


def build_parser():
    p = parser(__doc__)
    p.add_argument("--gan", required=True, help="GAN checkpoint")
    p.add_argument("--data", required=True, help="prepared source npz (real class counts)")
    p.add_argument("--out", required=True, help="pool directory to write")
    return p


def declared_params(args) -> list[str]:
    return ["generate", "device"]


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    params = read_params(declared_params(args), args.params)
    cfg = load_section(params, "generate", GenerateConfig)
    device = resolve_device(params["device"])
    set_determinism(cfg.seed)
    gen, _, payload = load_gan(args.gan, device)
    data = load_prepared(args.data)
    counts = data.class_counts("train")
    per_class = pool_size_per_class(counts, cfg.pool_multiplier, cfg.max_ratio)
    meta = {"gan": args.gan, "generator": payload.get("generator_kind", "raw"),
            "classes": data.classes, "seed": cfg.seed,
            "max_ratio": cfg.max_ratio, "pool_multiplier": cfg.pool_multiplier,
            "real_train_counts": counts.tolist()}
    generate_pool(gen, data.num_classes, per_class, payload["gen_kwargs"]["z_dim"],
                  cfg.batch_size, cfg.seed, device, args.out, meta)


if __name__ == "__main__":
    exit_with(main)
