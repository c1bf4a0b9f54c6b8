"""Stage score: one table with a row per synthetic image (confidence in the intended label,
predicted label, realism), the features behind FID/KID, and FID/KID overall and per class."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ganaug.config import ParamsError, ScoreConfig
from ganaug.data import load_prepared
from ganaug.gan import load_gan
from ganaug.io import atomic_path, save_json
from ganaug.models.checkpoint import load_classifier
from ganaug.pool import load_pool
from ganaug.report_figures import score_figures
from ganaug.runtime import resolve_device, set_determinism
from ganaug.scoring import (
    COLLAPSE_RATIO,
    fid_report,
    fid_subset,
    pixel_diversity,
    score_images,
    score_summary,
)
from ganaug.stage import exit_with, load_section, parser, read_params
from ganaug.tensors import batched

log = logging.getLogger("ganaug.score")


def build_parser():
    p = parser(__doc__)
    p.add_argument("--pool", required=True, help="pool directory")
    p.add_argument("--scorer", required=True, help="scorer checkpoint")
    p.add_argument("--gan", required=True, help="GAN checkpoint (its discriminator scores realism)")
    p.add_argument("--data", required=True, help="prepared source npz (real reference)")
    p.add_argument("--out", required=True, help="directory for scores.csv and features.npz")
    p.add_argument("--metrics", required=True, help="JSON with FID/KID and score summaries")
    p.add_argument("--plots", required=True, help="directory for score histograms and sample grids")
    p.add_argument("--external", required=True,
                   help="directory of fetched weights (inception.pth when score.features has it)")
    return p


def declared_params(args) -> list[str]:
    return ["score", "device"]


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    params = read_params(declared_params(args), args.params)
    cfg = load_section(params, "score", ScoreConfig)
    device = resolve_device(params["device"])
    set_determinism(cfg.seed)
    images, labels, _ = load_pool(args.pool)
    data = load_prepared(args.data)
    scorer, _ = load_classifier(args.scorer, device)
    _, disc, _ = load_gan(args.gan, device)

    table, fake_feats = score_images(images, labels, scorer, disc, cfg.batch_size, device)
    x_real, y_real = data.split("train")
    real_feats = batched(scorer.features, x_real, cfg.batch_size, device).numpy().astype(np.float32)
    subset = fid_subset(labels, cfg.fid_per_class, cfg.seed)
    kw = {"subset_size": cfg.kid_subset_size, "subsets": cfg.kid_subsets, "seed": cfg.seed}
    fid = fid_report(real_feats, y_real, fake_feats[subset], labels[subset], data.classes,
                     feature_space="scorer", **kw)
    diversity = pixel_diversity(x_real, y_real, images, labels, data.classes)
    if diversity["collapsed"]:
        log.warning("synthetic images vary less than %.0f%% as much as the real ones in %s: the "
                    "GAN may have collapsed (diversity in %s)", 100 * COLLAPSE_RATIO,
                    ", ".join(diversity["collapsed"]), args.metrics)
    other = {}
    if "inception" in cfg.features:
        other["inception"] = inception_report(args.external, images, labels, subset, data, cfg,
                                              device, kw)

    with atomic_path(args.out) as tmp:
        tmp.mkdir()
        table.to_csv(tmp / "scores.csv", index=False)
        np.savez(tmp / "features.npz", pool=fake_feats, real=real_feats, real_labels=y_real)
    save_json(args.metrics, {"fid_kid": fid, "other_feature_spaces": other,
                             "scores": score_summary(table, data.classes), "diversity": diversity})
    score_figures(table, images, data.classes, Path(args.plots), per_class=cfg.grid_per_class)


def inception_report(external: str, images, labels, subset, data, cfg: ScoreConfig, device,
                     kw: dict) -> dict:
    """FID/KID overall and per class in the standard FID Inception feature space."""
    from ganaug.inception import FEATURE_SPACE, RESIZE, inception_features, load_fid_inception

    weights = Path(external) / "inception.pth"
    if not weights.is_file():
        raise ParamsError(
            f"score.features lists inception, but {weights} does not exist: add fetch.inception "
            f"(url and sha256 of the FID Inception weights, see README.md) to params.yaml so that "
            f"the fetch@inception stage provides it")
    net = load_fid_inception(weights, device)
    x_real, y_real = data.split("train")
    real = inception_features(x_real, net, cfg.batch_size, device)
    fake = inception_features(images[subset], net, cfg.batch_size, device)
    return fid_report(real, y_real, fake, labels[subset], data.classes,
                      feature_space=FEATURE_SPACE, resize=RESIZE, **kw)


if __name__ == "__main__":
    exit_with(main)
