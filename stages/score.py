"""Stage score: one table with a row per synthetic image (confidence in the intended label,
predicted label, the discriminator's scores, provenance, distances to the nearest real images),
the features behind FID/KID, and the pool's FID/KID, precision/recall/density/coverage, spread
and memorisation check."""

from __future__ import annotations

from pathlib import Path

from ganaug.configs.score import ScoreConfig
from ganaug.data import load_prepared
from ganaug.errors import ParamsError
from ganaug.gan import load_gan
from ganaug.io import save_json
from ganaug.metrics.inception import inception_report
from ganaug.models.saved import load_classifier
from ganaug.replicates import vary_of, with_seed
from ganaug.report.figures import memorisation_grid, score_figures
from ganaug.runtime import resolve_device, set_determinism, set_threads
from ganaug.stage import exit_with, load_section, parser, read_params
from ganaug.synthetic.pool import load_pool, load_sources
from ganaug.synthetic.scoring import fid_subset, run_score, save_scores, scorer_temperature


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
    p.add_argument("--replicate", type=int, default=0,
                   help="the replicate (a study seed): seeds follow study.vary")
    return p


def declared_params(args) -> list[str]:
    return ["score", "study.vary", "device", "threads"]


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    params = read_params(declared_params(args), args.params)
    cfg = with_seed(load_section(params, "score", ScoreConfig), args.replicate, "gan",
                    vary_of(params))
    device = resolve_device(params["device"])
    set_threads(params["threads"])
    set_determinism(cfg.seed)
    images, labels, _ = load_pool(args.pool)
    data = load_prepared(args.data)
    scorer, scorer_payload = load_classifier(args.scorer, device)
    gan = load_gan(args.gan, device)

    result = run_score(images, labels, load_sources(args.pool, len(labels)), scorer, gan, data,
                       cfg, device, temperature=scorer_temperature(scorer_payload))
    other = {}
    if "inception" in cfg.features:
        weights = Path(args.external) / "inception.pth"
        if not weights.is_file():
            raise ParamsError(
                f"score.features lists inception, but {weights} does not exist: add "
                f"fetch.inception (url and sha256 of the FID Inception weights, see README.md) to "
                f"params.yaml so that the fetch@inception stage provides it")
        other["inception"] = inception_report(weights, images, labels,
                                              fid_subset(labels, cfg.fid_per_class, cfg.seed),
                                              data, cfg, device)
    save_scores(args.out, result.scores)
    save_json(args.metrics, {**result.metrics, "other_feature_spaces": other})
    table = result.scores.table
    score_figures(table, images, data.classes, Path(args.plots), per_class=cfg.grid_per_class,
                  columns=gan.family.score_names)
    memorisation_grid(table, images, data.split("train")[0], Path(args.plots) / "closest_to_train.png",
                      n=cfg.grid_per_class * 2)


if __name__ == "__main__":
    exit_with(main)
