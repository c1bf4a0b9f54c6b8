"""The study end to end with the real ``dvc`` CLI in a temporary git repo, on the tiny preset.

One study is reproduced per test session; tests that change params work on copies of it, and
check which stages ``dvc repro`` runs again (DESIGN.md, rule 1).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from e2e import REPO_ROOT, dvc, edit_params, make_study, read_yaml, stages_run

pytestmark = pytest.mark.e2e

TINY = REPO_ROOT / "presets" / "tiny.yaml"


def instances(strategies, ratios, seeds, targets=("typeset",)):
    """The stage instances of a grid downstream of `score`, by DESIGN.md's names."""
    out = {f"select@{s}-{r}-{seed}" for s in strategies for r in ratios for seed in seeds}
    out |= {f"train@{s}-{r}-{seed}" for s in strategies for r in ratios for seed in seeds}
    out |= {f"evaluate@{s}-{r}-{seed}" for s in strategies for r in ratios for seed in seeds}
    return out


def test_first_repro_runs_every_stage_and_writes_the_results(tiny_study):
    repo, ran = tiny_study
    p = read_yaml(TINY)["study"]
    strategies, seeds = p["strategies"], p["seeds"]
    expected = {"code", "check_params", "prepare@digits", "prepare@typeset", "report"}
    expected |= {f"{st}@{s}" for st in ("subset", "train_scorer", "train_gan", "generate", "score")
                 for s in seeds}
    expected |= instances(strategies, p["ratios"], seeds)
    expected |= {f"train_baseline@{s}" for s in seeds} | {f"evaluate_baseline@{s}" for s in seeds}
    expected |= {f"evaluate_baseline_synthetic@{s}" for s in seeds}
    expected |= {f"{st}@{n}-{s}" for st in ("train_real", "evaluate_real")
                 for n in p["real_sizes"] for s in seeds}
    expected |= {f"train_synthetic@{st}-{s}" for st in strategies for s in seeds}
    expected |= {f"evaluate_synthetic@{st}-{s}" for st in strategies for s in seeds}
    rounds = read_yaml(TINY)["refine"]["rounds"]
    expected |= {f"refine@{r}" for r in rounds}
    expected |= {f"{st}@{r}-{s}" for st in ("train_refine", "evaluate_refine")
                 for r in rounds for s in seeds}
    assert ran == expected

    summary = json.loads((repo / "metrics/summary.json").read_text())
    assert summary["test_sets"] == ["digits", "typeset", "synthetic", "mixed"]
    for strategy in ["none", *strategies]:
        for test_set in ("digits", "typeset"):
            ratios = ["0"] if strategy == "none" else ["1", "synthetic"]
            for r in ratios:
                acc = summary["results"][strategy][r][test_set]["accuracy"]
                assert 0.0 <= acc["mean"] <= 1.0 and acc["n"] == len(seeds)
    for r in rounds:
        assert summary["results"]["refine"][r]["digits"]["accuracy"]["n"] == len(seeds)
    # The baseline's synthetic test sets come from evaluate_baseline_synthetic's own file.
    assert summary["results"]["none"]["0"]["synthetic"]["accuracy"]["n"] == len(seeds)
    for test_set in ("digits", "typeset"):
        assert list(summary["learning_curve"][test_set]) == [str(n) for n in p["real_sizes"]]
        eq = summary["real_equivalent"][strategies[0]]["1"][test_set]["mean"]
        assert eq["where"] in ("on", "beyond", "below", "flat")
        assert (eq["real_per_class"] is None) == (eq["where"] != "on")
    # Two replicates, each its own draw of subset, GAN and classifier: tested and counted.
    assert seeds == [0, 1] and summary["verdicts"]["counts"]["digits"]["grid"]["comparisons"] > 0
    gain = summary["results"][strategies[0]]["1"]["digits"]["gain_vs_baseline"]
    assert gain["n"] == 2 and gain["p_value_holm"] is not None
    assert summary["vary"] == {"varied": ["subset", "gan", "classifier"], "held_fixed": []}
    assert set(summary["pool"]["per_replicate"]) == {"0", "1"}
    for path in ("plots/report/README.md", "plots/report/accuracy_vs_ratio.png",
                 "plots/report/real_equivalent.png", "plots/report/learning_curve.csv",
                 "plots/report/confusion.png", "plots/report/gan_losses.png",
                 "plots/report/accuracy_vs_ratio.csv", "plots/gan/0/samples.png",
                 "plots/score/0/confidence_hist.png", "metrics/scorer/0.json"):
        assert (repo / path).is_file(), path


def test_the_curve_at_real_per_class_is_the_baseline(tiny_study):
    """The learning curve's subsets are nested and its size data.real_per_class is the study's
    own train split, in the same order: same data, same seed, same model, same accuracies."""
    repo, _ = tiny_study
    n = read_yaml(TINY)["data"]["real_per_class"]
    assert n in read_yaml(TINY)["study"]["real_sizes"]
    curve = json.loads((repo / f"metrics/eval/real-{n}-0.json").read_text())
    baseline = json.loads((repo / "metrics/eval/none-0-0.json").read_text())
    assert curve["train"]["train_counts"] == baseline["train"]["train_counts"]
    assert curve["test"] == baseline["test"]
    smaller = json.loads((repo / "metrics/eval/real-3-0.json").read_text())
    assert smaller["train"]["train_counts"]["real"] == 3 * 10


def test_the_baseline_and_the_learning_curve_need_no_gan(tmp_path):
    """`dvc repro evaluate_baseline evaluate_real` on a fresh study: no GAN, no pool."""
    repo = make_study(tmp_path / "study", TINY)
    ran = stages_run(dvc(repo, "repro", "evaluate_baseline", "evaluate_real"))
    p = read_yaml(TINY)["study"]
    expected = {"code", "check_params", "prepare@digits", "prepare@typeset"}
    expected |= {f"{st}@{s}" for st in ("subset", "train_baseline", "evaluate_baseline")
                 for s in p["seeds"]}
    expected |= {f"{st}@{n}-{s}" for st in ("train_real", "evaluate_real") for n in p["real_sizes"]
                 for s in p["seeds"]}
    assert ran == expected
    assert not (repo / "data/synthetic_test/0.npz").exists() and not (repo / "models/gan/0.pt").exists()
    baseline = json.loads((repo / "metrics/eval/none-0-0.json").read_text())
    assert set(baseline["test"]) == {"digits", "typeset"}


def test_outputs_are_few_large_files(tiny_study):
    repo, _ = tiny_study
    pool = sorted(p.name for p in (repo / "data/pool/0").iterdir())
    assert pool == ["images.npy", "labels.npy", "meta.json", "sources.npy"]
    images = np.load(repo / "data/pool/0/images.npy", mmap_mode="r")
    assert images.dtype == np.uint8 and images.ndim == 4 and len(images) > 100
    assert sorted(p.name for p in (repo / "data/scores/0").iterdir()) == ["features.npz", "scores.csv"]
    scores = pd.read_csv(repo / "data/scores/0/scores.csv")
    assert len(scores) == len(images)  # a row per pool image
    chosen = np.load(repo / "data/selections/random-1-0.npy")
    assert chosen.dtype == np.int64 and chosen.ndim == 1  # indices, not images


def test_second_repro_runs_nothing(study_copy):
    assert stages_run(dvc(study_copy, "repro")) == set()
    assert "up to date" in dvc(study_copy, "status").stdout


def test_adding_a_ratio_runs_only_its_instances(study_copy):
    edit_params(study_copy, **{"study.ratios": [1, 2]})
    ran = stages_run(dvc(study_copy, "repro"))
    p = read_yaml(study_copy / "params.yaml")["study"]
    assert ran == instances(p["strategies"], [2], p["seeds"]) | {"check_params", "report"}


def test_adding_a_real_size_runs_only_its_instances(study_copy):
    sizes = read_yaml(study_copy / "params.yaml")["study"]["real_sizes"]
    edit_params(study_copy, **{"study.real_sizes": [*sizes, 24]})
    ran = stages_run(dvc(study_copy, "repro"))
    assert ran == {"check_params", "train_real@24-0", "evaluate_real@24-0", "train_real@24-1",
                   "evaluate_real@24-1", "report"}
    summary = json.loads((study_copy / "metrics/summary.json").read_text())
    assert summary["learning_curve"]["digits"]["24"]["real_per_class"] == 24


def test_a_real_size_larger_than_a_class_stops_with_a_clear_error(study_copy):
    edit_params(study_copy, **{"study.real_sizes": [500]})
    proc = dvc(study_copy, "repro", "train_real", check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "study.real_sizes: 500 real images per class asked, but" in out, out[-3000:]
    assert "Traceback" not in out


def test_adding_a_refinement_round_runs_only_that_round(study_copy):
    rounds = read_yaml(study_copy / "params.yaml")["refine"]["rounds"]
    last = list(rounds)[-1]
    edit_params(study_copy, **{"refine.rounds": {**rounds, "next": last}})
    ran = stages_run(dvc(study_copy, "repro"))
    assert ran == {"check_params", "refine@next", "train_refine@next-0", "evaluate_refine@next-0",
                   "train_refine@next-1", "evaluate_refine@next-1", "report"}
    stats = json.loads((study_copy / "metrics/refine/next.json").read_text())
    assert stats["start"] == last


def test_adding_a_seed_runs_only_that_replicate(study_copy):
    """A new seed is a new replicate: its own subset, scorer, GAN, pool, scores, selections and
    classifiers run, nothing of the others; refinement rounds loop over the replicates, so they
    rerun (README: "Replicates and verdicts"). Read from `dvc status` (running a whole replicate
    takes minutes; the tiny study's build runs two): that refine's rerun leaves the other
    replicates' rounds alone is what train_refine's per-replicate dependency
    (data/refine/<round>/<seed>) guarantees."""
    import re

    edit_params(study_copy, **{"study.seeds": [0, 1, 2]})
    ran = set(re.findall(r"^(\S+):$", dvc(study_copy, "status").stdout, flags=re.MULTILINE))
    p = read_yaml(study_copy / "params.yaml")["study"]
    rounds = read_yaml(study_copy / "params.yaml")["refine"]["rounds"]
    new = {f"train@{s}-1-2" for s in p["strategies"]} | {"train_baseline@2"}
    new |= {f"train_synthetic@{s}-2" for s in p["strategies"]}
    new |= {f"train_refine@{r}-2" for r in rounds}
    new |= {f"train_real@{n}-2" for n in p["real_sizes"]}
    new |= {name.replace("train", "evaluate", 1) for name in new}
    new |= {"evaluate_baseline_synthetic@2"}
    new |= {f"{st}@2" for st in ("subset", "train_scorer", "train_gan", "generate", "score")}
    new |= {f"select@{s}-1-2" for s in p["strategies"]} | {f"refine@{r}" for r in rounds}
    assert ran == new | {"check_params", "report"}


def test_threshold_change_reruns_only_threshold_instances(study_copy):
    scores = pd.read_csv(study_copy / "data/scores/0/scores.csv")
    old = read_yaml(study_copy / "params.yaml")["select"]["threshold"]["min_confidence"]
    # A threshold that halves the passing images of the class with the most of them, so the
    # selection really changes (a calibrated scorer's confidences can cluster by class, so a
    # quantile over the whole pool may pass exactly the same images).
    passing = scores[scores.confidence >= old]
    label = passing.label.value_counts().idxmax()
    t = float(np.median(passing.confidence[passing.label == label]))
    assert set(passing.index) != set(scores.index[scores.confidence >= t])
    edit_params(study_copy, **{"select.threshold.min_confidence": t})
    ran = stages_run(dvc(study_copy, "repro"))
    assert "select@threshold-1-0" in ran and "train@threshold-1-0" in ran
    # Refinement selects by refine.strategy (threshold in the tiny preset), so its rounds rerun too.
    refinement = {"refine", "train_refine", "evaluate_refine"}
    assert all("threshold" in name or name.split("@")[0] in refinement
               for name in ran - {"check_params", "report"}), ran
    stats = json.loads((study_copy / "metrics/select/threshold-1-0.json").read_text())
    assert stats["chosen_total"] <= stats["k_total"]
    assert stats["shortfall_total"] == stats["k_total"] - stats["chosen_total"]


def test_metrics_diff_after_a_change(study_copy):
    """A report-only param reruns only the report, and `dvc metrics diff` shows what moved."""
    edit_params(study_copy, **{"report.confidence_level": 0.9})
    assert stages_run(dvc(study_copy, "repro")) == {"check_params", "report"}
    changed = json.loads(dvc(study_copy, "metrics", "diff", "--json").stdout)
    changed = changed["metrics/headline.json"]
    assert changed["confidence_level"] == {"old": 0.95, "new": 0.9, "diff": pytest.approx(-0.05)}
    assert "metrics/headline.json" in dvc(study_copy, "metrics", "diff").stdout  # the human table
    summary = json.loads((study_copy / "metrics/summary.json").read_text())
    assert summary["confidence_level"] == 0.9  # still written, git-tracked, not a metric


def test_the_study_metrics_fit_on_a_screen(study_copy):
    """`dvc metrics show` prints the headline (at most 30 values), not summary.json's thousands:
    a header and one line per metrics file, and `dvc metrics diff`, one row per value, stays
    within a terminal's width. (A refinement round's stats are metrics too, so that its stage
    keeps a run-cache entry; they appear only where `refine.rounds` is set, as in this preset.)"""
    shown = json.loads(dvc(study_copy, "metrics", "show", "--json").stdout)
    files = shown[""]["data"]
    assert "metrics/summary.json" not in files and "metrics/headline.json" in files

    def flat(x):
        return sum(flat(v) for v in x.values()) if isinstance(x, dict) else 1
    assert flat(files["metrics/headline.json"]["data"]) <= 30
    assert sum(flat(f["data"]) for name, f in files.items()
               if not name.startswith("metrics/refine/")) <= 45  # the headline and the scorer's
    table = dvc(study_copy, "metrics", "show").stdout.strip().splitlines()
    assert len(table) <= 1 + len(files)
    edit_params(study_copy, **{"report.confidence_level": 0.9})
    dvc(study_copy, "repro")
    diff = dvc(study_copy, "metrics", "diff", "--all", "--targets", "metrics/headline.json",
               "metrics/scorer/0.json").stdout.strip().splitlines()
    assert 1 < len(diff) <= 46 and max(map(len, diff)) <= 200, "\n".join(diff)


@pytest.mark.parametrize(("gan", "strategies"), [
    ({"arch": "stargan", "n_critic": 2, "lr_g": 0.0001, "lr_d": 0.0001,
      "diffaugment": ["translation", "cutout"], "stargan": {"res_blocks": 1}}, ["combined"]),
    ({"arch": "sngan", "n_critic": 1, "beta1": 0.0, "beta2": 0.9, "lecam_weight": 0.1,
      "diffaugment": ["color", "translation", "cutout"], "ada_target": 0.6, "ada_interval": 2,
      "sngan": {"z_dim": 8}},
     ["kcenter"]),
], ids=["stargan-combined", "sngan-diffaugment-lecam-ada-kcenter"])
def test_every_family_and_new_strategy_runs_under_dvc_repro(study_copy, gan, strategies):
    """A GAN family and strategies swapped in by params alone: dvc repro reruns the GAN and what
    follows it, every stage works with them, and the report shows them."""
    params = read_yaml(study_copy / "params.yaml")
    old = params["gan"]  # the tiny preset's family section goes; the new family's comes
    switched = {**{k: v for k, v in old.items() if k != old["arch"]}, **gan}
    edit_params(study_copy, gan=switched,
                **{"study.strategies": strategies, "refine.rounds": {},
                   "select.combined": {"weight": 1.0, "standardize": True,
                                       "require_correct": False},
                   "select.kcenter": {"min_confidence": 0.0, "start": "confidence"}})
    ran = stages_run(dvc(study_copy, "repro"))
    assert {"train_gan@0", "generate@0", "score@0", "train_gan@1", "report"} <= ran
    assert {f"select@{s}-1-{seed}" for s in strategies for seed in (0, 1)} <= ran
    assert "train_scorer@0" not in ran and "train_baseline@0" not in ran
    summary = json.loads((study_copy / "metrics/summary.json").read_text())
    for s in strategies:
        assert summary["results"][s]["1"]["digits"]["accuracy"]["n"] == 2
    score = json.loads((study_copy / "metrics/score/0.json").read_text())
    assert score["prdc"]["mean_over_classes"]["precision"] is not None
    assert score["memorisation"]["fraction_closer_to_test"] is not None
    table = pd.read_csv(study_copy / "data/scores/0/scores.csv")
    sources = np.load(study_copy / "data/pool/0/sources.npy")
    if gan["arch"] == "stargan":  # translations of real images of other classes
        assert "d_confidence" in table and (sources[:, 0] >= 0).all()
        assert (sources[:, 1] != np.load(study_copy / "data/pool/0/labels.npy")).all()
    else:
        assert (sources == -1).all()
    assert params["gan"]["arch"] != gan["arch"]


def test_a_gan_held_fixed_is_trained_once_and_shared(tmp_path, tiny_study):
    """study.vary without gan: every replicate uses one GAN and one scorer, trained on the
    prepared train split; the first instance trains each, the other copies it (same bits, so
    the same dvc.lock as training it again). Varied (the tiny study), each replicate has its own."""
    params = read_yaml(TINY)
    params["study"]["vary"] = ["subset", "classifier"]
    repo = make_study(tmp_path / "study", params)
    proc = dvc(repo, "repro", "train_gan", "train_scorer")
    assert {"train_gan@0", "train_gan@1", "train_scorer@0", "train_scorer@1"} <= stages_run(proc)
    assert (proc.stdout + proc.stderr).count("the same run another replicate made") == 2
    for model in ("gan", "scorer"):
        first, second = (repo / f"models/{model}/{s}.pt" for s in (0, 1))
        assert first.read_bytes() == second.read_bytes(), model
    assert (repo / "plots/gan/0/samples.png").read_bytes() == \
        (repo / "plots/gan/1/samples.png").read_bytes()
    assert len([p for p in (repo / ".checkpoints/shared").iterdir() if p.is_dir()]) == 2
    # Trained on the prepared split, not on replicate 0's own subset.
    from ganaug.checkpoints import load_checkpoint
    assert load_checkpoint(repo / "models/gan/1.pt")["meta"]["replicate"] is None
    assert "changed" not in dvc(repo, "status", "train_gan", "train_scorer").stdout
    own, _ = tiny_study
    assert (own / "models/gan/0.pt").read_bytes() != (own / "models/gan/1.pt").read_bytes()
