"""The replicate planner: for each undecided comparison, the replicates that would decide it,
and the params change that adds them as a fresh confirmatory set (``plan`` in summary.json)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ganaug.report.summary import primary_key
from ganaug.stats import replicates_for_difference, replicates_for_equivalence


def plan_replicates(results: dict[str, Any], spread: dict[str, Any], test_sets: list[str],
                    alpha: float, margin: float, power: float) -> None:
    """For each undecided comparison, the replicates that would decide it (``planned``).

    ``spread``: the results whose paired SD the plan uses (the pilot's when there is one, else
    these results themselves). The level is the most stringent of Holm's steps, alpha / m for a
    family of m (the primary: alpha): conservative, since Holm tests the other comparisons at
    larger levels. ``difference``: replicates for the two-sided paired t-test to detect a true
    gain of delta with the power; ``equivalence``: for TOST to show equivalence when the true
    gain is 0 (the best case for equivalence: the observed mean is too noisy to plan on);
    ``replicates``: the larger, which decides the comparison under either truth.
    """
    for strategy, by_ratio in results.items():
        for ratio, entry in by_ratio.items():
            for test_set in test_sets:
                g = entry[test_set]["gain_vs_baseline"]
                if g.get("verdict") != "undecided":
                    continue
                sd = spread.get(strategy, {}).get(ratio, {}).get(test_set, {}).get(
                    "gain_vs_baseline", {}).get("std")
                # No family size: one replicate, nothing tested, no SD to plan from either.
                level = None if g["family_size"] is None else alpha / g["family_size"]
                plan = {"sd": sd, "planning_alpha": level, "difference": None,
                        "equivalence": None, "replicates": None}
                if sd is not None and level is not None:
                    plan["difference"] = replicates_for_difference(margin, sd, level, power)
                    plan["equivalence"] = replicates_for_equivalence(margin, sd, level, power)
                    if plan["difference"] is not None and plan["equivalence"] is not None:
                        plan["replicates"] = max(plan["difference"], plan["equivalence"])
                g["planned"] = plan


def study_plan(results: dict[str, Any], test_sets: list[str], seeds: list[int],
               primary: tuple[str, float, str] | None) -> dict[str, Any]:
    """What the planner asks of the next study: for the primary comparison (when undecided)
    and for every undecided comparison, the confirmatory replicates and the params change.

    Seeds added after looking at results must form a fresh confirmatory set (optional
    stopping otherwise inflates false verdicts), so the change always turns every current seed
    into the pilot: ``study.pilot: <current number of seeds>`` and that many new seeds.
    """
    def change(n: int | None) -> str | None:
        if n is None:
            return None
        first = max(seeds) + 1
        return (f"set study.pilot: {len(seeds)} and add {n} new seeds to study.seeds "
                f"({first} to {first + n - 1})")

    planned = [(s, r, t, entry[t]["gain_vs_baseline"]["planned"])
               for s, by_ratio in results.items() for r, entry in by_ratio.items()
               for t in test_sets if "planned" in entry[t]["gain_vs_baseline"]]
    out: dict[str, Any] = {"undecided": len(planned)}
    if primary is not None:
        strategy, ratio, test_set = primary_key(primary)
        p = results[strategy][ratio][test_set]["gain_vs_baseline"]
        n = p.get("planned", {}).get("replicates")
        out["primary"] = {"replicates": n, "params_change": change(n)}
    reachable = [pl["replicates"] for *_, pl in planned if pl["replicates"] is not None]
    if planned:
        out["all_undecided"] = {
            "replicates": max(reachable) if len(reachable) == len(planned) else None,
            "median": float(np.median(reachable)) if reachable else None,
            "unreachable": len(planned) - len(reachable),
            "params_change": change(max(reachable)) if len(reachable) == len(planned) else None}
    return out
