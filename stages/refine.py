"""Stage refine@<round>: for every replicate (study seed), fine-tune the GAN the round starts from
on the replicate's real + selected images, then generate, score and select again. A round
starting from `base` starts from the replicate's main pipeline: models/gan/<seed>.pt and the
selection made on data/pool/<seed>. One instance runs every replicate (a round's start is a
params value, which dvc.yaml cannot put in a path), so adding a seed reruns the rounds."""

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
from ganaug.models.saved import load_checkpoint, load_classifier
from ganaug.replicates import vary_of, with_seed
from ganaug.resume import discard_resume
from ganaug.runtime import inference_layout, resolve_device, set_determinism, set_threads
from ganaug.selection import STRATEGIES, Candidates, choose
from ganaug.stage import exit_with, load_section, parser, read_params
from ganaug.synthetic.pool import load_pool, load_selected
from ganaug.synthetic.refine import fine_tune, generate_score_select, save_round
from ganaug.synthetic.scoring import load_scores, scorer_temperature


def build_parser():
    p = parser(__doc__)
    p.add_argument("--round", required=True, help="round name (a key of refine.rounds)")
    p.add_argument("--start", required=True,
                   help="directory of the round it starts from (a folder per replicate)")
    p.add_argument("--gan", required=True, help="the replicates' GANs (<seed>.pt; start of base)")
    p.add_argument("--pool", required=True, help="the replicates' pools (<seed>/; start of base)")
    p.add_argument("--scores", required=True,
                   help="the replicates' scores (<seed>/; start of base)")
    p.add_argument("--scorer", required=True, help="the replicates' scorers (<seed>.pt)")
    p.add_argument("--data", required=True, help="the replicates' real data (<seed>.npz)")
    p.add_argument("--out", required=True, help="round directory to write (a folder per replicate)")
    p.add_argument("--stats", required=True, help="JSON stats of the round")
    p.add_argument("--resume", help="resume checkpoint of the fine-tuning (one per replicate: "
                                    "<stem>-<seed><suffix>)")
    return p


def declared_params(args) -> list[str]:
    from ganaug.params import load_params

    strategy = load_params(args.params).get("refine", {}).get("strategy", "threshold")
    # Only this round's entry of refine.rounds: adding a round must not rerun the others.
    return ["refine.strategy", "refine.ratio", "refine.steps", f"refine.rounds.{args.round}",
            "gan", "generate", "score", f"select.{strategy}", "study.seeds", "study.vary", "device",
            "threads"]


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


def start_point(args, seed: int, start: str, cfg: RefineConfig, select_cfg, data, device):
    """``(GAN payload, (x, y) selected images)`` of the round this one starts from."""
    if start != REFINE_BASE:
        return (load_checkpoint(Path(args.start) / str(seed) / "gan.pt", kind="gan"),
                load_selected(Path(args.start) / str(seed) / "selected.npz"))
    images, labels, _ = load_pool(Path(args.pool) / str(seed))
    scores = load_scores(Path(args.scores) / str(seed))
    candidates = Candidates(scores=scores.table, features=scores.pool_features, images=images,
                            real=data, device=device, classes=data.classes)
    chosen, _ = choose(candidates, data.class_counts("train"), cfg.ratio, cfg.strategy,
                       select_cfg)
    return (load_checkpoint(Path(args.gan) / f"{seed}.pt", kind="gan"),
            (np.asarray(images[chosen]), labels[chosen]))


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    params = read_params(declared_params(args), args.params)
    cfg, start_name = round_config(params, args.round)
    vary = vary_of(params)
    strategy = STRATEGIES.get(cfg.strategy)
    device = resolve_device(params["device"])
    set_threads(params["threads"])
    per_replicate = {}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    for seed in params["study"]["seeds"]:
        per_replicate[str(seed)] = run_round(args, params, cfg, start_name, strategy, seed, vary,
                                             device)
    save_json(args.stats, {"round": args.round, "start": start_name, "steps": cfg.steps,
                           "strategy": cfg.strategy, "ratio": cfg.ratio,
                           **mean_over_replicates(per_replicate),
                           "replicates": per_replicate})


def run_round(args, params: dict, cfg: RefineConfig, start_name: str, strategy, seed: int,
              vary: list[str], device) -> dict:
    """One replicate's round: fine-tune, generate, score, select; returns its stats."""
    gan_cfg = with_seed(gan_config(params["gan"]), seed, "gan", vary)
    select_cfg = load_section(params, f"select.{cfg.strategy}", strategy.config)
    if hasattr(select_cfg, "seed"):
        select_cfg = with_seed(select_cfg, seed, "gan", vary)
    set_determinism(gan_cfg.seed)
    data = load_prepared(Path(args.data) / f"{seed}.npz")
    scorer, scorer_payload = load_classifier(Path(args.scorer) / f"{seed}.pt", device)
    resume = None
    if args.resume:
        r = Path(args.resume)
        resume = str(r.with_name(f"{r.stem}-{seed}{r.suffix}"))
    start, selected = start_point(args, seed, start_name, cfg, select_cfg, data, device)
    result = fine_tune(data, start, selected, gan_cfg, cfg.steps, device, resume)
    meta = {"round": args.round, "start": start_name, "steps": cfg.steps, "replicate": seed,
            "trained_on": {"real": int(len(data.split("train")[1])),
                           "selected": int(len(selected[1]))},
            "final": result.history[-1] if result.history else {}}
    payload = result.payload(meta=meta)
    gan = LoadedGan(result.family, inference_layout(result.generator, device).eval(),
                    inference_layout(result.discriminator, device).eval(), payload)
    x, y, stats = generate_score_select(
        gan, scorer, data, cfg, select_cfg,
        with_seed(load_section(params, "generate", GenerateConfig), seed, "gan", vary),
        with_seed(load_section(params, "score", ScoreConfig), seed, "gan", vary), device,
        scorer_temperature(scorer_payload))
    save_round(str(Path(args.out) / str(seed)), payload, x, y)
    discard_resume(resume)
    return {**meta, **stats}


def mean_over_replicates(per_replicate: dict[str, dict]) -> dict:
    """The pool's FID/KID of the round (what the report's refinement table shows), averaged over
    the replicates, under the same keys."""
    runs = [r.get("fid_kid_pool", {}) for r in per_replicate.values()]
    keys = [k for k, v in runs[0].items() if isinstance(v, (int, float))] if runs else []
    return {"fid_kid_pool": {k: float(np.mean([r[k] for r in runs if k in r])) for k in keys},
            "fid_kid_pool_over": f"mean over {len(runs)} replicates"}


if __name__ == "__main__":
    exit_with(main)
