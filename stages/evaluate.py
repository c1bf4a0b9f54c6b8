"""Stage evaluate@...: a classifier on the source test split and on every target dataset (and, given
a non-empty synthetic test set, on it and on the mix of real and synthetic test images): accuracy,
macro-F1, per-class accuracy and a confusion matrix per test set. A run of several members
(classifier.members) gets their mean accuracy, macro-F1 and per-class accuracy, each member's
accuracy and macro-F1, and the confusion matrix of all their predictions.

With --only-synthetic-test it evaluates on the synthetic and mixed test sets alone: the real-only
baseline's evaluate_baseline instances stay free of the GAN, and evaluate_baseline_synthetic adds
the train-on-real / test-on-synthetic figures in a file of its own."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ganaug.data import Prepared, load_prepared
from ganaug.errors import ParamsError
from ganaug.io import save_json
from ganaug.metrics.evaluation import align_to_source, evaluate_classifier, mean_of_members
from ganaug.models.saved import load_members
from ganaug.runtime import resolve_device, set_threads
from ganaug.stage import exit_with, parser, read_params

# Test sets every evaluation adds when the synthetic test set is not empty.
SYNTHETIC_TEST, MIXED_TEST = "synthetic", "mixed"

# What the report needs to know about how the model was trained (from its checkpoint).
TRAIN_META = ("train_counts", "synthetic_only", "real_per_class", "epoch_images", "member_count",
              "epochs_run", "best_epoch", "best_val_accuracy")


def build_parser():
    p = parser(__doc__)
    p.add_argument("--model", required=True, help="classifier checkpoint")
    p.add_argument("--data-dir", required=True, help="directory of prepared datasets")
    p.add_argument("--out", required=True, help="JSON metrics to write")
    p.add_argument("--plots", required=True, help="directory for confusion-matrix plot data")
    p.add_argument("--strategy", required=True, help="run identity: strategy (none: baseline)")
    p.add_argument("--ratio", required=True,
                   help="run identity: ratio, 'synthetic' (synthetic only) or a refinement round")
    p.add_argument("--synthetic-test",
                   help="prepared npz of the held-out synthetic test set (may be empty)")
    p.add_argument("--only-synthetic-test", action="store_true",
                   help="evaluate on the synthetic and mixed test sets only")
    p.add_argument("--seed", required=True, type=int, help="run identity: seed")
    p.add_argument("--batch-size", type=int, default=1024)
    return p


def declared_params(args) -> list[str]:
    if args.only_synthetic_test:
        return ["data.source", "device", "threads"]
    return ["data.source", "study.targets", "device", "threads"]


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    params = read_params(declared_params(args), args.params)
    device = resolve_device(params["device"])
    set_threads(params["threads"])
    members, payload = load_members(args.model, device)
    data_dir = Path(args.data_dir)
    source_name = params["data"]["source"]
    source = load_prepared(data_dir / f"{source_name}.npz")
    test_sets = {} if args.only_synthetic_test else real_test_sets(params, source, data_dir)
    if args.synthetic_test is not None:
        test_sets.update(synthetic_test_sets(args.synthetic_test, source, source_name))
    elif args.only_synthetic_test:
        raise ParamsError("--only-synthetic-test needs --synthetic-test")

    results, confusion_rows = {}, {}
    for name, (x, y, info) in test_sets.items():
        m = mean_of_members([evaluate_classifier(model, x, y, source.classes, args.batch_size,
                                                 device) for model in members])
        pred = m.pop("predictions")
        results[name] = {**m, **info}
        actual = np.tile(y, len(members))  # every member's predictions in turn
        confusion_rows[name] = [{"actual": source.classes[a], "predicted": source.classes[p]}
                                for a, p in zip(actual.tolist(), pred.tolist(), strict=True)]
    ratio = _number_or_name(args.ratio)
    train_meta = {k: payload["meta"][k] for k in TRAIN_META if k in payload["meta"]}
    save_json(args.out, {"run": {"strategy": args.strategy, "ratio": ratio, "seed": args.seed},
                         "source": source_name, "classes": source.classes, "train": train_meta,
                         "test": results})
    # The directory is a DVC output even when there is nothing to plot (an empty synthetic test).
    Path(args.plots).mkdir(parents=True, exist_ok=True)
    for name, rows in confusion_rows.items():
        save_json(Path(args.plots) / f"{name}.json", rows)


def real_test_sets(params: dict, source: Prepared, data_dir: Path) -> dict[str, tuple]:
    """The source's test split and every target's, in the source's format."""
    out = {params["data"]["source"]: (*source.split("test"), {"conversion": []})}
    for target in params["study"]["targets"]:
        out[target] = align_to_source(load_prepared(data_dir / f"{target}.npz"), source, target)
    return out


def synthetic_test_sets(path: str, source: Prepared, source_name: str) -> dict[str, tuple]:
    """Train on real / test on synthetic, and train and test on the mix (none when empty)."""
    x_syn, y_syn = load_prepared(path).split("test")
    if not len(y_syn):
        return {}
    x_src, y_src = source.split("test")
    return {SYNTHETIC_TEST: (x_syn, y_syn, {"conversion": []}),
            MIXED_TEST: (np.concatenate([x_src, x_syn]), np.concatenate([y_src, y_syn]),
                         {"conversion": [], "parts": [source_name, SYNTHETIC_TEST]})}


def _number_or_name(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


if __name__ == "__main__":
    exit_with(main)
