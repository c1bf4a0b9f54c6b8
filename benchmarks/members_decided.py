"""How many classifier members a study needs: its verdicts recomputed with the first k members.

Reads a reproduced study's evaluation files (``metrics/eval``; trained with
``classifier.members`` >= 2, so each run's file keeps every member's accuracy and macro-F1),
replaces each run's accuracy by the mean of its first k members, and decides the study again
with the report stage's own code, for k = 1 .. members. Prints, per k, the decided share of the
source test set's comparisons, the primary comparison's verdict and interval, and the median
paired SD of the source's gains. Training time grows with k; what k = 1 shows is the study
with one classifier per run (the same members' first one, so the comparison is paired).

    python benchmarks/members_decided.py [--eval metrics/eval] [--params params.yaml]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))


def first_members(evaluations: dict, k: int) -> dict:
    """The evaluations as if each run had trained only its first ``k`` members."""
    out = copy.deepcopy(evaluations)
    for entry in out.values():
        for m in entry["test"].values():
            members = m.get("members")
            if not members:
                continue
            if len(members) < k:
                raise SystemExit(f"a run has {len(members)} members, fewer than {k}")
            m["accuracy"] = statistics.fmean(x["accuracy"] for x in members[:k])
            m["macro_f1"] = statistics.fmean(x["macro_f1"] for x in members[:k])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--eval", default=str(ROOT / "metrics" / "eval"))
    p.add_argument("--params", default=str(ROOT / "params.yaml"))
    args = p.parse_args()

    from ganaug.config import RefineConfig, ReportConfig, StudyConfig
    from ganaug.report.runs import (
        MIXED_TEST,
        SYNTHETIC_TEST,
        collect,
        expected_runs,
        load_evaluations,
        training_protocol,
    )
    from ganaug.stage import load_section, read_params
    from stages.report import decide_study

    params = read_params(["study", "report", "refine", "data.source", "data.real_per_class"],
                         args.params)
    study = load_section(params, "study", StudyConfig)
    cfg = load_section(params, "report", ReportConfig)
    refine = load_section(params, "refine", RefineConfig)
    source = params["data"]["source"]
    evaluations = load_evaluations(args.eval)
    members = training_protocol(evaluations)["members"]
    if not isinstance(members, int) or members < 2:
        raise SystemExit(f"{args.eval}: runs of {members} members; this needs 2 or more each")
    runs = expected_runs(study.strategies, study.ratios, study.seeds, list(refine.rounds),
                         study.real_sizes)
    print(f"{args.eval}: {len(study.seeds)} replicates, {members} members per run, delta "
          f"{cfg.equivalence_margin} points, source test set {source}")
    for k in range(1, members + 1):
        found = first_members(evaluations, k)
        df = collect(args.eval, runs, found)
        test_sets = [source, *study.targets] + [t for t in (SYNTHETIC_TEST, MIXED_TEST)
                                                if t in set(df.test_set)]
        s = decide_study(df, study, cfg, source, test_sets, [source, *study.targets],
                         params["data"]["real_per_class"])
        verdicts, sds = [], []
        for by_ratio in s["results"].values():
            for by_test in by_ratio.values():
                g = by_test.get(source, {}).get("gain_vs_baseline", {})
                if g.get("verdict") is not None:
                    verdicts.append(g["verdict"])
                    sds.append(g["std"] * 100)
        decided = sum(v != "undecided" for v in verdicts)
        pr = s["primary"] or {}
        counts = {v: verdicts.count(v) for v in ("helps", "hurts", "equivalent", "undecided")}
        print(f"k = {k}: {decided} of {len(verdicts)} decided on {source} "
              f"({decided / max(len(verdicts), 1):.0%}; {counts}); median paired SD "
              f"{statistics.median(sds):.2f} points; primary {pr.get('verdict')}, "
              f"{pr.get('gain', float('nan')) * 100:+.2f} "
              f"[{pr.get('ci_low', float('nan')) * 100:+.2f}, "
              f"{pr.get('ci_high', float('nan')) * 100:+.2f}]")


if __name__ == "__main__":
    main()
