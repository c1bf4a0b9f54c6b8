"""Stage refine@<round>: fine-tune the GAN the round starts from on real + its selected images,
then generate, score and select again. A round starting from `base` starts from the main
pipeline: models/gan.pt and the selection made on data/pool."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ganaug.configs.generate import GenerateConfig
from ganaug.configs.refine import REFINE_BASE, RefineConfig
from ganaug.configs.score import ScoreConfig
from ganaug.data import load_prepared
from ganaug.errors import ParamsError
from ganaug.gan.family import LoadedGan
from ganaug.gan.knobs import gan_config
from ganaug.io import save_json
from ganaug.models.checkpoint import load_checkpoint, load_classifier
from ganaug.pool import load_pool, load_selected
from ganaug.refine import fine_tune, generate_score_select, save_round
from ganaug.resume import discard_resume
from ganaug.runtime import inference_layout, resolve_device, set_determinism, set_threads
from ganaug.scoring import load_scores, scorer_temperature
from ganaug.selection import STRATEGIES, Candidates, choose
from ganaug.stage import exit_with, load_section, parser, read_params


def build_parser():
    p = parser(__doc__)
    p.add_argument("--round", required=True, help="round name (a key of refine.rounds)")
    p.add_argument("--start", required=True, help="directory of the round it starts from")
    p.add_argument("--gan", required=True, help="the main pipeline's GAN (start of base)")
    p.add_argument("--pool", required=True, help="the main pipeline's pool (start of base)")
    p.add_argument("--scores", required=True, help="the main pipeline's scores (start of base)")
    p.add_argument("--scorer", required=True, help="scorer checkpoint")
    p.add_argument("--data", required=True, help="prepared source npz")
    p.add_argument("--out", required=True, help="round directory to write")
    p.add_argument("--stats", required=True, help="JSON stats of the round")
    p.add_argument("--resume", help="resume checkpoint of the fine-tuning")
    return p


def declared_params(args) -> list[str]:
    from ganaug.params import load_params

    strategy = load_params(args.params).get("refine", {}).get("strategy", "threshold")
    # Only this round's entry of refine.rounds: adding a round must not rerun the others.
    return ["refine.strategy", "refine.ratio", "refine.steps", f"refine.rounds.{args.round}",
            "gan", "generate", "score", f"select.{strategy}", "device", "threads"]


def round_config(params: dict, name: str) -> tuple[RefineConfig, str]:
    """The validated refine knobs and the name of the round ``name`` starts from."""
    refine = params["refine"]
    start = refine["rounds"][name]
    cfg = load_section({"refine": {**refine, "rounds": {name: REFINE_BASE}}}, "refine",
                       RefineConfig)
    if not isinstance(start, str):
        raise ParamsError(f"params.yaml: refine.rounds.{name}: expected the name of a round or "
                          f"{REFINE_BASE!r}, got {start!r}")
    return cfg, start


def start_point(args, start: str, cfg: RefineConfig, select_cfg, data, device):
    """``(GAN payload, (x, y) selected images)`` of the round this one starts from."""
    if start != REFINE_BASE:
        return (load_checkpoint(Path(args.start) / "gan.pt", kind="gan"),
                load_selected(Path(args.start) / "selected.npz"))
    images, labels, _ = load_pool(args.pool)
    scores = load_scores(args.scores)
    candidates = Candidates(scores=scores.table, features=scores.pool_features, images=images,
                            real=data, device=device, classes=data.classes)
    chosen, _ = choose(candidates, data.class_counts("train"), cfg.ratio, cfg.strategy,
                       select_cfg)
    return load_checkpoint(args.gan, kind="gan"), (np.asarray(images[chosen]), labels[chosen])


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    params = read_params(declared_params(args), args.params)
    cfg, start_name = round_config(params, args.round)
    gan_cfg = gan_config(params["gan"])
    strategy = STRATEGIES.get(cfg.strategy)
    select_cfg = load_section(params, f"select.{cfg.strategy}", strategy.config)
    device = resolve_device(params["device"])
    set_threads(params["threads"])
    set_determinism(gan_cfg.seed)
    data = load_prepared(args.data)
    scorer, scorer_payload = load_classifier(args.scorer, device)

    start, selected = start_point(args, start_name, cfg, select_cfg, data, device)
    result = fine_tune(data, start, selected, gan_cfg, cfg.steps, device, args.resume)
    meta = {"round": args.round, "start": start_name, "steps": cfg.steps,
            "trained_on": {"real": int(len(data.split("train")[1])),
                           "selected": int(len(selected[1]))},
            "final": result.history[-1] if result.history else {}}
    payload = result.payload(meta=meta)
    gan = LoadedGan(result.family, inference_layout(result.generator, device).eval(),
                    inference_layout(result.discriminator, device).eval(), payload)
    x, y, stats = generate_score_select(
        gan, scorer, data, cfg, select_cfg, load_section(params, "generate", GenerateConfig),
        load_section(params, "score", ScoreConfig), device, scorer_temperature(scorer_payload))
    save_round(args.out, payload, x, y)
    save_json(args.stats, {**meta, "strategy": cfg.strategy, "ratio": cfg.ratio, **stats})
    discard_resume(args.resume)


if __name__ == "__main__":
    exit_with(main)
