"""The study's runs: which (strategy, ratio, seed) runs a study has, and their evaluations,
selection stats and per-replicate JSON files read into tables.

Runs are keyed by (strategy, ratio, seed): the real-only baseline is ``("none", 0)``; the
synthetic-only model of a strategy has ratio ``"synthetic"``; a model of the real-only learning
curve is ``("real", <real images per class>)``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ganaug.io import DataFileError, load_json

BASELINE = ("none", 0.0)
SYNTHETIC = "synthetic"
# Refinement rounds are runs of strategy "refine" whose "ratio" is the round's name.
REFINE = "refine"
# The real-only learning curve: runs of strategy "real" whose "ratio" is real images per class.
REAL = "real"
# Test sets the evaluate stage adds when the synthetic test set is not empty.
SYNTHETIC_TEST, MIXED_TEST = "synthetic", "mixed"


def is_grid_strategy(strategy: str) -> bool:
    """A selection strategy of the ratio grid (not the baseline, refinement or the curve)."""
    return strategy not in (BASELINE[0], REFINE, REAL)


def _ratio_text(ratio: float | str) -> str:
    if isinstance(ratio, str):
        return ratio
    return str(int(ratio)) if float(ratio).is_integer() else str(ratio)


def run_key(strategy: str, ratio: float | str, seed: int) -> tuple[str, str, int]:
    """A hashable run identity that does not care whether params wrote ``1`` or ``1.0``."""
    return strategy, _ratio_text(ratio if isinstance(ratio, str) else float(ratio)), int(seed)


def expected_runs(strategies: list[str], ratios: list[float], seeds: list[int],
                  rounds: list[str] = (), real_sizes: list[int] = ()
                  ) -> list[tuple[str, float | str, int]]:
    runs: list[tuple[str, float | str, int]] = [(*BASELINE, s) for s in seeds]
    runs += [(st, r, s) for st in strategies for r in ratios for s in seeds]
    runs += [(st, SYNTHETIC, s) for st in strategies for s in seeds]
    runs += [(REFINE, r, s) for r in rounds for s in seeds]
    runs += [(REAL, float(n), s) for n in real_sizes for s in seeds]
    return runs


def training_protocol(evaluations: dict[tuple[str, str, int], dict[str, Any]]
                      ) -> dict[str, Any]:
    """How the study's classifiers were trained, from their evaluations: the members per run
    and the images per epoch (null: one pass), each one value, or a list where runs differ
    (an evaluation from before these keys: 1 member, one pass)."""
    seen: dict[str, set] = {"members": set(), "epoch_images": set()}
    for entry in evaluations.values():
        train = entry.get("train", {})
        seen["members"].add(train.get("member_count", 1))
        seen["epoch_images"].add(train.get("epoch_images"))
    return {key: (next(iter(v)) if len(v) == 1 else sorted(v, key=str)) if v else None
            for key, v in seen.items()}


def load_evaluations(eval_dir: str | Path) -> dict[tuple[str, str, int], dict[str, Any]]:
    """Every evaluation file by run key, a run's test sets merged from all its files.

    A run may be evaluated by more than one stage (the real-only baseline on the real test sets
    by ``evaluate_baseline``, on the synthetic ones by ``evaluate_baseline_synthetic``), each
    writing its own file; a test set evaluated twice for one run is an error naming both files.
    """
    merged: dict[tuple[str, str, int], dict[str, Any]] = {}
    origin: dict[tuple[tuple[str, str, int], str], Path] = {}
    for path in sorted(Path(eval_dir).glob("*.json")):
        metrics = load_json(path)
        run = metrics.get("run")
        if not run:
            raise DataFileError(f"{path}: no 'run' entry; not written by the evaluate stage")
        key = run_key(run["strategy"], run["ratio"], run["seed"])
        entry = merged.setdefault(key, {**metrics, "test": {}})
        for test_set, m in metrics["test"].items():
            if (key, test_set) in origin:
                raise DataFileError(f"{path}: run {key} on {test_set!r} is also evaluated in "
                                    f"{origin[key, test_set]}; remove the stale file")
            origin[key, test_set] = path
            entry["test"][test_set] = m
    return merged


def coverage_of_test_sets(eval_dir: str | Path, run: tuple[str, float | str, int],
                          found: dict | None = None) -> dict[str, dict[str, Any]]:
    """Per test set, how much of it the evaluations scored (read from ``run``'s evaluation; the
    same for every run): images of classes the source lacks are not evaluated, and a source
    class may have no test image there. Only test sets that lost something are listed.
    ``found``: :func:`load_evaluations` of ``eval_dir`` when the caller has it already."""
    found = found if found is not None else load_evaluations(eval_dir)
    out: dict[str, dict[str, Any]] = {}
    for test_set, m in found.get(run_key(*run), {"test": {}})["test"].items():
        dropped = int(m.get("dropped_images") or 0)
        missing = list(m.get("classes_missing_from_target") or [])
        if dropped or missing:
            out[test_set] = {"evaluated": int(m["n"]), "dropped_images": dropped,
                             "classes_not_in_source": list(m.get("classes_not_in_source") or []),
                             "classes_missing_from_target": missing}
    return out


def coverage_note(coverage: dict[str, dict[str, Any]], test_set: str) -> list[str]:
    """The report's line saying that a test set was not scored whole (empty when it was)."""
    c = coverage.get(test_set)
    if c is None:
        return []
    names = ", ".join(json.dumps(n, ensure_ascii=False) for n in c["classes_not_in_source"])
    text = f"**Not the whole test set.** Accuracies on {test_set} are on {c['evaluated']} images"
    if c["dropped_images"]:
        total = c["evaluated"] + c["dropped_images"]
        text += (f"; {c['dropped_images']} of its {total} test images were not evaluated: their "
                 f"classes ({names}) are not classes of the source")
    if c["classes_missing_from_target"]:
        missing = ", ".join(json.dumps(n, ensure_ascii=False)
                            for n in c["classes_missing_from_target"])
        text += f"; the source's classes {missing} have no test image there"
    return [text + " (map a class with `datasets.<name>.class_map`).", ""]


def collect(eval_dir: str | Path, runs: list[tuple[str, float | str, int]],
            found: dict | None = None) -> pd.DataFrame:
    """One row per (run, test set): accuracy, macro_f1, the test set's size ``n_test`` and
    per-class accuracy columns ``acc/<c>``.

    Each evaluation file names its run inside; only the runs of the current grid are kept, so
    files left by an earlier, larger grid are ignored. A missing run is an error. ``found``:
    :func:`load_evaluations` of ``eval_dir`` when the caller has it already.
    """
    wanted = {run_key(*r): r for r in runs}
    found = found if found is not None else load_evaluations(eval_dir)
    missing = [wanted[k] for k in wanted if k not in found]
    if missing:
        raise DataFileError(f"{eval_dir}: no evaluation for runs {missing}")
    rows = []
    for key, (strategy, ratio, seed) in wanted.items():
        for test_set, m in found[key]["test"].items():
            # A NaN accuracy would pass through means and tests as a silent NaN verdict.
            if not isinstance(m.get("accuracy"), int | float) or not math.isfinite(m["accuracy"]):
                raise DataFileError(f"{eval_dir}: run {key} on {test_set!r}: accuracy must be a "
                                    f"finite number, got {m.get('accuracy')!r}")
            row = {"strategy": strategy, "ratio": ratio, "seed": seed, "test_set": test_set,
                   "accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "n_test": m.get("n")}
            row.update({f"acc/{c}": v for c, v in m["per_class_accuracy"].items()})
            rows.append(row)
    return pd.DataFrame(rows)


def load_select_stats(select_dir: str | Path) -> dict[tuple[str, str], dict]:
    """Per (strategy, ratio): its selections' stats, numbers averaged over the replicates."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for path in sorted(Path(select_dir).glob("*.json")):
        st = load_json(path)
        groups.setdefault(run_key(st["strategy"], st["ratio"], 0)[:2], []).append(st)
    return {key: mean_of(stats) for key, stats in groups.items()}


def mean_of(items: list[Any]) -> Any:
    """Numbers averaged where every item has a number (None ignored), mappings key by key;
    anything else is the first item's."""
    first = items[0]
    if isinstance(first, dict):
        return {k: mean_of([i[k] for i in items if isinstance(i, dict) and k in i])
                for k in first}
    numbers = [i for i in items if isinstance(i, (int, float)) and not isinstance(i, bool)]
    if numbers and len(numbers) == len([i for i in items if i is not None]):
        mean = float(np.mean(numbers))
        return mean if len(numbers) > 1 else first
    return first


def load_json_dir(path: str | Path) -> dict[str, dict]:
    """Every ``*.json`` in ``path`` by file stem (an absent directory is empty)."""
    return {p.stem: load_json(p) for p in sorted(Path(path).glob("*.json"))}


def incomplete_replicates(found: dict[tuple[str, str, int], Any],
                          runs: list[tuple[str, float | str, int]]
                          ) -> dict[int, list[tuple[str, float | str, int]]]:
    """Seed -> the runs of that replicate with no evaluation in ``found`` (from
    :func:`load_evaluations`); seeds with every run evaluated are left out."""
    out: dict[int, list[tuple[str, float | str, int]]] = {}
    for run in runs:
        if run_key(*run) not in found:
            out.setdefault(run[2], []).append(run)
    return out

