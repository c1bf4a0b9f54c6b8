"""Stage train_scorer: the real-data classifier that scores synthetic images and supplies the
offline feature space for FID/KID."""

from __future__ import annotations

from ganaug.calibration import calibration_report
from ganaug.configs.train import ScorerConfig
from ganaug.data import load_prepared
from ganaug.io import save_json
from ganaug.models.saved import classifier_payload, save_checkpoint
from ganaug.replicates import vary_of, with_seed
from ganaug.runtime import resolve_device, set_determinism, set_threads
from ganaug.stage import exit_with, load_section, parser, read_params
from ganaug.training import discard_resume, live_curves, logits_of, train_classifier


def build_parser():
    p = parser(__doc__)
    p.add_argument("--data", required=True, help="prepared source npz")
    p.add_argument("--out", required=True, help="scorer checkpoint to write")
    p.add_argument("--metrics", required=True, help="JSON metrics to write")
    p.add_argument("--resume", help="resume checkpoint (kept outside DVC outputs)")
    p.add_argument("--plots", help="directory for the training curves (dvclive)")
    p.add_argument("--replicate", type=int, default=0,
                   help="the replicate (a study seed): seeds follow study.vary")
    return p


def declared_params(args) -> list[str]:
    return ["scorer", "study.vary", "device", "threads"]


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    params = read_params(declared_params(args), args.params)
    cfg = with_seed(load_section(params, "scorer", ScorerConfig), args.replicate, "gan",
                    vary_of(params))
    device = resolve_device(params["device"])
    set_threads(params["threads"])
    set_determinism(cfg.seed)
    data = load_prepared(args.data)
    with live_curves(args.plots) as on_epoch:
        result = train_classifier(*data.split("train"), *data.split("val"), data.num_classes,
                                  cfg, cfg.seed, device, resume_path=args.resume,
                                  on_epoch=on_epoch, name="scorer")
    x_val, y_val = data.split("val")
    calibration = calibration_report(logits_of(result.model, x_val, 512, device), y_val,
                                     fit=cfg.calibrate, seed=cfg.seed)
    meta = {"role": "scorer", "classes": data.classes, "seed": cfg.seed, "replicate": args.replicate, **result.summary,
            "temperature": calibration["temperature"]}
    save_checkpoint(args.out, classifier_payload(result.model, cfg.arch, result.arch_kwargs, meta))
    save_json(args.metrics, {**result.summary, "train_images": int(len(data.split("train")[1])),
                             "calibration": calibration})
    discard_resume(args.resume)


if __name__ == "__main__":
    exit_with(main)
