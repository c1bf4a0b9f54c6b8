"""The generator comparison table from finished study copies (benchmarks/run_study.py outputs).

    python benchmarks/generator_table.py /tmp/fer-dcgan /tmp/fer-wgan_gp /tmp/fer-sngan ...

For each study: the GAN family; FID and KID of the pool in the scorer's feature space;
precision, recall, density and coverage (means over classes); spread vs real; the memorisation
check (share of synthetic images closer to a test image than to any training image, next to the
same share for real held-out images); the real-only accuracy; the Classification Accuracy Score
(synthetic-only training, best strategy) and its share of the real-only accuracy; the best mix's
gain over the baseline with its 95% interval and the Holm-corrected verdict; the GAN's training
time and the whole `dvc repro`'s. Prints a markdown table.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml

_STEP_LINE = re.compile(r"^(\d\d):(\d\d):(\d\d) ganaug\.gan\.train INFO train_gan step (\d+)/(\d+):",
                        re.MULTILINE)


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def _num(v: float | None, fmt: str) -> str:
    return "–" if v is None else format(v, fmt)


def row(study: Path) -> dict:
    params = yaml.safe_load((study / "params.yaml").read_text())
    score = json.loads((study / "metrics/score/0.json").read_text())
    summary = json.loads((study / "metrics/summary.json").read_text())
    source = summary["source"]
    results = summary["results"]
    base = results["none"]["0"][source]["accuracy"]
    cas = {s: v["synthetic"][source]["accuracy"] for s, v in results.items()
           if "synthetic" in v}
    best_cas = max(cas.items(), key=lambda kv: kv[1]["mean"]) if cas else None
    mixes = [(s, r, v[source]["gain_vs_baseline"]) for s, by in results.items()
             if s not in ("none", "refine", "real") for r, v in by.items() if r != "synthetic"]
    best = max(mixes, key=lambda m: m[2]["mean"]) if mixes else None
    fk = score["fid_kid"]["overall"]
    prdc = score.get("prdc", {}).get("mean_over_classes", {})
    mem = score.get("memorisation", {})
    timing = json.loads((study / "timing.json").read_text()) if (study / "timing.json").exists() \
        else {}
    gan_seconds = _gan_seconds(study)
    return {
        "study": study.name, "arch": params["gan"]["arch"],
        "tricks": _tricks(params["gan"]),
        "fid": fk["fid"], "kid": fk["kid"], "kid_std": fk.get("kid_std"),
        "precision": prdc.get("precision"), "recall": prdc.get("recall"),
        "density": prdc.get("density"), "coverage": prdc.get("coverage"),
        "spread": score.get("diversity", {}).get("mean_ratio"),
        "closer_to_test": mem.get("fraction_closer_to_test"),
        "closer_to_test_real": mem.get("reference_fraction"), "copying": mem.get("copying"),
        "real_only": base["mean"], "real_only_std": base["std"],
        "cas": best_cas[1]["mean"] if best_cas else None,
        "cas_strategy": best_cas[0] if best_cas else None,
        "best_mix": f"{best[0]} {best[1]}x" if best else None,
        "gain": best[2]["mean"] if best else None,
        "gain_low": best[2]["ci_low"] if best else None,
        "gain_high": best[2]["ci_high"] if best else None,
        "gain_holm": best[2].get("distinguishable_from_zero") if best else None,
        "gan_seconds": gan_seconds, "repro_seconds": timing.get("dvc_repro_seconds"),
    }


def _tricks(gan: dict) -> str:
    parts = []
    if gan.get("diffaugment"):
        parts.append("DiffAugment")
    if gan.get("ada_target") is not None:
        parts.append("ADA")
    if gan.get("lecam_weight"):
        parts.append("LeCam")
    return " + ".join(parts)


def _gan_seconds(study: Path) -> float | None:
    """Wall time of train_gan, from the timestamps of its step lines in the log that
    ``run_study.py``'s output went to (``<study>.log`` beside the study, as
    fer2013_generators.sh writes it): the time between the first and the last logged step,
    scaled to all the steps. None when there is no such log."""
    log = study.parent / f"{study.name}.log"
    if not log.exists():
        return None
    points = []
    for m in _STEP_LINE.finditer(log.read_text(errors="replace")):
        h, mi, sec, step, total = map(int, m.groups())
        points.append((h * 3600 + mi * 60 + sec, step, total))
    if len(points) < 2 or points[-1][1] == points[0][1]:
        return None
    (t0, s0, _), (t1, s1, total) = points[0], points[-1]
    elapsed = (t1 - t0) % 86400  # a run past midnight
    return elapsed / (s1 - s0) * total


def table(rows: list[dict]) -> str:
    head = ("| generator | FID | KID | precision | recall | density | coverage | spread | "
            "closer to test (real) | real only | CAS (best) | CAS / real | best mix | gain "
            "[95% CI] | Holm | GAN min |")
    lines = [head, "|" + "---|" * 16]
    for r in rows:
        name = r["arch"] + (f" + {r['tricks']}" if r["tricks"] else "")
        share = r["cas"] / r["real_only"] if r["cas"] is not None and r["real_only"] else None
        gain = (f"{100 * r['gain']:+.1f} [{100 * r['gain_low']:+.1f}, {100 * r['gain_high']:+.1f}]"
                if r["gain_low"] is not None else _pct(r["gain"]))
        lines.append(
            f"| {name} | {_num(r['fid'], '.2f')} | {_num(r['kid'], '.4f')} | "
            f"{_num(r['precision'], '.2f')} | {_num(r['recall'], '.2f')} | "
            f"{_num(r['density'], '.2f')} | {_num(r['coverage'], '.2f')} | "
            f"{_num(r['spread'], '.2f')} | {_pct(r['closer_to_test'])}% "
            f"({_pct(r['closer_to_test_real'])}%) | {_pct(r['real_only'])} ± "
            f"{_pct(r['real_only_std'])} | {_pct(r['cas'])} ({r['cas_strategy']}) | "
            f"{_num(share, '.0%')} | {r['best_mix']} | {gain} | "
            f"{'yes' if r['gain_holm'] else 'no'} | "
            f"{_num(None if r['gan_seconds'] is None else r['gan_seconds'] / 60, '.0f')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    studies = [Path(p) for p in (sys.argv[1:] if argv is None else argv)]
    rows = [row(s) for s in studies]
    print(table(rows))  # noqa: T201 - the benchmark's answer
    print()  # noqa: T201
    for r in rows:
        print(f"{r['study']}: dvc repro {r['repro_seconds']} s")  # noqa: T201


if __name__ == "__main__":
    main()
