"""Stage generate: a class-balanced synthetic pool, written in batches into a few large files,
and a held-out synthetic test set."""

from __future__ import annotations

from ganaug.configs.generate import GenerateConfig
from ganaug.data import Prepared, load_prepared, save_prepared
from ganaug.gan import load_gan
from ganaug.replicates import vary_of, with_seed
from ganaug.runtime import resolve_device, set_determinism, set_threads
from ganaug.stage import exit_with, load_section, parser, read_params
from ganaug.synthetic.pool import TEST_SEED_OFFSET, make_pool, make_test_set, pool_size_per_class


def build_parser():
    p = parser(__doc__)
    p.add_argument("--gan", required=True, help="GAN checkpoint")
    p.add_argument("--data", required=True, help="prepared source npz (real class counts)")
    p.add_argument("--out", required=True, help="pool directory to write")
    p.add_argument("--test-out", required=True,
                   help="prepared npz of the held-out synthetic test set (generate.test_per_class)")
    p.add_argument("--replicate", type=int, default=0,
                   help="the replicate (a study seed): seeds follow study.vary")
    return p


def declared_params(args) -> list[str]:
    return ["generate", "study.vary", "device", "threads"]


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    params = read_params(declared_params(args), args.params)
    cfg = with_seed(load_section(params, "generate", GenerateConfig), args.replicate, "gan",
                    vary_of(params))
    device = resolve_device(params["device"])
    set_threads(params["threads"])
    set_determinism(cfg.seed)
    gan = load_gan(args.gan, device)
    data = load_prepared(args.data)
    counts = data.class_counts("train")
    per_class = pool_size_per_class(counts, cfg.pool_multiplier, cfg.max_ratio)
    meta = {"gan": args.gan, "arch": gan.family.name,
            "generator": gan.payload.get("generator_kind", "raw"), "classes": data.classes,
            "seed": cfg.seed, "replicate": args.replicate, "max_ratio": cfg.max_ratio, "pool_multiplier": cfg.pool_multiplier,
            "real_train_counts": counts.tolist()}
    make_pool(gan, data, per_class, cfg.batch_size, cfg.seed, device, args.out, meta)
    x, y = make_test_set(gan, data, cfg.test_per_class, cfg.batch_size, cfg.seed, device)
    empty = (x[:0], y[:0])
    save_prepared(args.test_out, Prepared(
        splits={"train": empty, "val": empty, "test": (x, y)}, classes=data.classes,
        meta={"name": "synthetic", "role": "synthetic test", "gan": args.gan,
              "per_class": cfg.test_per_class, "seed": cfg.seed + TEST_SEED_OFFSET,
              "translated_from": "real test split" if gan.family.translates else None}))


if __name__ == "__main__":
    exit_with(main)
