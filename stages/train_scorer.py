"""Stage train_scorer: the real-data classifier that scores synthetic images and supplies the
offline feature space for FID/KID.

Part of the synthetic side: each replicate trains its own on its own subset when ``study.vary``
has ``gan``. Held fixed, every replicate trains the same scorer on the prepared train split
(``--prepared``) with ``scorer.seed``; the first instance stores the run and the others copy it
(ganaug.shared)."""

from __future__ import annotations

from ganaug.configs.train import ScorerConfig
from ganaug.data import load_prepared
from ganaug.io import save_json
from ganaug.metrics.calibration import calibration_report
from ganaug.models.saved import classifier_payload, save_checkpoint
from ganaug.replicates import vary_of, with_seed
from ganaug.runtime import resolve_device, set_determinism, set_threads
from ganaug.shared import run_key, shared_run, stage_code
from ganaug.stage import exit_with, load_section, parser, read_params
from ganaug.training import discard_resume, live_curves, logits_of, train_classifier


def build_parser():
    p = parser(__doc__)
    p.add_argument("--data", required=True, help="the replicate's prepared npz (its subset)")
    p.add_argument("--prepared", help="the prepared source npz: the scorer's data when "
                   "study.vary holds gan fixed (default: --data)")
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
    vary = vary_of(params)
    cfg = with_seed(load_section(params, "scorer", ScorerConfig), args.replicate, "gan", vary)
    device = resolve_device(params["device"])
    set_threads(params["threads"])
    set_determinism(cfg.seed)
    shared = "gan" not in vary
    data = load_prepared(args.prepared if shared and args.prepared else args.data)
    if not shared:
        _train(args, cfg, data, device, replicate=args.replicate)
        return
    outputs = {"scorer.pt": args.out, "metrics.json": args.metrics}
    if args.plots:
        outputs["plots"] = args.plots
    key = run_key("train_scorer", cfg, *data.split("train"), *data.split("val"), data.classes,
                  str(device), args.plots is not None, stage_code(__file__))
    shared_run(key, outputs, lambda: _train(args, cfg, data, device, replicate=None),
               what=f"train_scorer (replicate {args.replicate})")
    discard_resume(args.resume)


def _train(args, cfg, data, device, replicate: int | None) -> None:
    """Train and calibrate, then write the checkpoint, metrics and curves. ``replicate`` None:
    one scorer that every replicate shares (its files then name none)."""
    with live_curves(args.plots) as on_epoch:
        result = train_classifier(*data.split("train"), *data.split("val"), data.num_classes,
                                  cfg, cfg.seed, device, resume_path=args.resume,
                                  on_epoch=on_epoch, name="scorer")
    x_val, y_val = data.split("val")
    calibration = calibration_report(logits_of(result.model, x_val, 512, device), y_val,
                                     fit=cfg.calibrate, seed=cfg.seed)
    meta = {"role": "scorer", "classes": data.classes, "seed": cfg.seed, "replicate": replicate,
            **result.summary,
            "temperature": calibration["temperature"]}
    save_checkpoint(args.out, classifier_payload(result.model, cfg.arch, result.arch_kwargs, meta))
    save_json(args.metrics, {**result.summary, "train_images": int(len(data.split("train")[1])),
                             "calibration": calibration})
    discard_resume(args.resume)


if __name__ == "__main__":
    exit_with(main)
