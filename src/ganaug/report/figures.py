"""Figures for people: score histograms, best/worst sample grids, accuracy-vs-ratio curves."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from ganaug.grids import grid, save_png, upscale_for
from ganaug.io import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finish_axes(ax, xlabel: str, title: str, legend_size: int) -> None:
    """An accuracy panel's labels, title, grid and legend (the curves' own ticks are set)."""
    ax.minorticks_off()
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=legend_size)


def save_figure(fig, path: str | Path) -> None:
    """Save a matplotlib figure as PNG atomically, without timestamps (same input, same bytes)."""
    plt = _pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())


SCORE_LABELS = {"confidence": "scorer p(intended label)",
                "realism": "discriminator realism (logit)",
                "d_confidence": "discriminator's class head p(intended label)"}


def score_figures(table: pd.DataFrame, images: np.ndarray, classes: list[str], out_dir: Path,
                  per_class: int, columns: tuple[str, ...] = ("realism",)) -> None:
    """Per-class histograms of the confidence and of each discriminator score in ``columns``;
    best/worst-scored images per class.

    Grids: one row per class, the ``per_class`` highest-scored images on the left, a grey gap, the
    lowest-scored on the right.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    for column in ("confidence", *columns):
        label = SCORE_LABELS.get(column, column)
        save_figure(_histograms(table, classes, column, label), out_dir / f"{column}_hist.png")
        save_png(out_dir / f"{column}_best_worst.png",
                 _best_worst_grid(table, images, len(classes), column, per_class))


def _histograms(table: pd.DataFrame, classes: list[str], column: str, label: str):
    plt = _pyplot()
    n = len(classes)
    cols = min(n, 5)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.0 * rows), sharex=True,
                             squeeze=False)
    bins = np.linspace(table[column].min(), table[column].max(), 31)
    for c, ax in enumerate(axes.flat):
        if c >= n:
            ax.axis("off")
            continue
        ax.hist(table.loc[table.label == c, column], bins=bins, color="tab:blue")
        ax.set_title(classes[c], fontsize=9)
        ax.tick_params(labelsize=7)
    fig.suptitle(f"{label}, per intended class", fontsize=10)
    fig.tight_layout()
    return fig


def _best_worst_grid(table: pd.DataFrame, images: np.ndarray, num_classes: int, column: str,
                     per_class: int) -> np.ndarray:
    blank = np.full((1, *images.shape[1:]), 128, np.uint8)
    rows = []
    for c in range(num_classes):
        rows_c = table[table.label == c].sort_values([column, "index"], ascending=[False, True])
        idx = rows_c["index"].to_numpy()
        best, worst = idx[:per_class], idx[::-1][:per_class]
        picks = [_pad(images[np.sort(best)][np.argsort(np.argsort(best))], per_class, blank), blank,
                 _pad(images[np.sort(worst)][np.argsort(np.argsort(worst))], per_class, blank)]
        rows.append(np.concatenate(picks))
    return grid(np.concatenate(rows), nrow=2 * per_class + 1,
                scale=upscale_for(images.shape[-1]))


def memorisation_grid(table: pd.DataFrame, images: np.ndarray, x_train: np.ndarray,
                      path: str | Path, n: int) -> None:
    """The ``n`` synthetic images closest to a training image (scorer space), each above that
    training image: a generator that copies shows pairs that look the same. Nothing is written
    when the table has no distances."""
    if "nn_train_index" not in table or len(table) == 0:
        return
    rows = table[table["nn_train_index"] >= 0].sort_values(["nn_train_dist", "index"]).head(n)
    if len(rows) == 0:
        return
    fake = images[np.sort(rows["index"].to_numpy())][np.argsort(np.argsort(rows["index"].to_numpy()))]
    real = x_train[rows["nn_train_index"].to_numpy()]
    save_png(path, grid(np.concatenate([fake, real]), nrow=len(rows),
                        scale=upscale_for(images.shape[-1])))


def _pad(x: np.ndarray, n: int, blank: np.ndarray) -> np.ndarray:
    return np.concatenate([x, np.repeat(blank, n - len(x), 0)]) if len(x) < n else x


def accuracy_vs_ratio_figure(curves: pd.DataFrame, test_sets: list[str], path: str | Path) -> None:
    """``curves``: columns test_set, strategy, ratio, mean, std (ratio 0 = the real-only baseline)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(test_sets), figsize=(5 * len(test_sets), 3.8), squeeze=False)
    for ax, test_set in zip(axes.flat, test_sets, strict=True):
        sub = curves[curves.test_set == test_set]
        for strategy, rows in sub.groupby("strategy", sort=True):
            rows = rows.sort_values("ratio")
            ax.errorbar(rows.ratio, rows["mean"], yerr=rows["std"], marker="o", capsize=3,
                        label=strategy)
        ax.set_xscale("symlog", linthresh=0.5)
        ticks = sorted(sub.ratio.unique())
        ax.set_xticks(ticks, [f"{t:g}x" for t in ticks])
        _finish_axes(ax, "synthetic images per real image (0: real only)", test_set, 8)
    fig.tight_layout()
    save_figure(fig, path)


def gan_losses_figure(metrics_dir: str | Path, path: str | Path) -> bool:
    """Every GAN training curve dvclive wrote (``<name>.tsv``: step, value), one panel each.

    Returns False (and writes nothing) when there are no curves.
    """
    tables = {p.stem: pd.read_csv(p, sep="\t") for p in sorted(Path(metrics_dir).glob("*.tsv"))}
    if not tables:
        return False
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(tables), figsize=(3.2 * len(tables), 2.6), squeeze=False)
    for ax, (name, t) in zip(axes.flat, tables.items(), strict=True):
        ax.plot(t["step"], t[name], lw=1)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
    return True


def confusion_figure(matrices: dict[str, np.ndarray], classes: list[str], path: str | Path) -> None:
    """One heat map per named confusion matrix ``cm[actual, predicted]`` (counts)."""
    plt = _pyplot()
    n = len(matrices)
    cols = min(n, 3)
    rows = -(-n // cols)
    size = 1.2 + 0.32 * len(classes)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, (title, cm) in zip(axes.flat, matrices.items(), strict=False):
        cm = np.asarray(cm)
        ax.imshow(cm, cmap="Blues")
        for (a, p), v in np.ndenumerate(cm):
            if v:
                ax.text(p, a, str(v), ha="center", va="center", fontsize=6,
                        color="white" if v > cm.max() / 2 else "black")
        ax.set_xticks(range(len(classes)), classes, fontsize=6, rotation=90)
        ax.set_yticks(range(len(classes)), classes, fontsize=6)
        ax.set_xlabel("predicted", fontsize=7)
        ax.set_ylabel("actual", fontsize=7)
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def real_equivalent_figure(curve: dict, equivalents: dict, path: str | Path) -> None:
    """Accuracy vs real images per class (log scale), one panel per test set: the real-only
    learning curve (means ± std over seeds, and its isotonic fit) with every model placed on it.

    ``curve``: test set -> size -> {real_per_class, accuracy: {mean, std}, fitted};
    ``equivalents``: strategy -> ratio -> test set -> {accuracy, mean: {real_per_class, where}}.
    A model on the curve is drawn at its equivalent size; one beyond (below) the curve at the
    curve's right (left) edge with a triangle pointing off it.
    """
    plt = _pyplot()
    test_sets = list(curve)
    fig, axes = plt.subplots(1, len(test_sets), figsize=(5.5 * len(test_sets), 4.0), squeeze=False)
    for ax, test_set in zip(axes.flat, test_sets, strict=True):
        points = sorted(curve[test_set].values(), key=lambda p: p["real_per_class"])
        sizes = [p["real_per_class"] for p in points]
        ax.errorbar(sizes, [p["accuracy"]["mean"] for p in points],
                    yerr=[p["accuracy"]["std"] or 0.0 for p in points], color="black", marker="o",
                    capsize=3, ls="none", label="real only (mean ± std)")
        ax.plot(sizes, [p["fitted"] for p in points], color="black", lw=1, label="isotonic fit")
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for i, (strategy, by_ratio) in enumerate(sorted(equivalents.items())):
            _place(ax, strategy, by_ratio, test_set, sizes, colors[i % len(colors)])
        ax.set_xscale("log")
        ax.set_xticks(sizes, [str(s) for s in sizes])
        _finish_axes(ax, "real images per class", test_set, 7)
    fig.tight_layout()
    save_figure(fig, path)


def _place(ax, strategy: str, by_ratio: dict, test_set: str, sizes: list[int], color) -> None:
    """One strategy's models on a learning-curve panel, each labelled with its ratio."""
    marker = {"on": "o", "beyond": ">", "below": "<", "flat": "s"}
    label = "real only (baseline)" if strategy == "none" else strategy
    for ratio, by_test in by_ratio.items():
        eq = by_test[test_set]
        where = eq["mean"]["where"]
        x = {"on": eq["mean"]["real_per_class"], "beyond": sizes[-1], "below": sizes[0],
             "flat": (eq["mean"].get("flat_between") or [None, None])[-1]}[where]
        ax.scatter([x], [eq["accuracy"]], color=color, marker=marker[where], s=30, label=label,
                   zorder=3)
        label = None  # one legend entry per strategy
        text = "" if strategy == "none" else ("syn" if ratio == "synthetic" else f"{ratio}x")
        ax.annotate(text, (x, eq["accuracy"]), fontsize=6, xytext=(3, 3),
                    textcoords="offset points", color=color)


def reliability_figure(calibration: dict, path: str | Path) -> None:
    """The scorer's reliability diagram on the validation split, before and after temperature
    scaling: accuracy against mean confidence per confidence bin (the diagonal is calibrated),
    with bar widths showing how many images each bin holds."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.6), sharey=True)
    for ax, key in zip(axes, ("before", "after"), strict=True):
        part = calibration[key]
        bins = [b for b in part["bins"] if b["n"]]
        centres = [(b["low"] + b["high"]) / 2 for b in bins]
        width = part["bins"][0]["high"] - part["bins"][0]["low"]
        ax.bar(centres, [b["accuracy"] for b in bins], width=width * 0.9, color="tab:blue",
               alpha=0.7, label="accuracy")
        ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o",
                color="tab:red", ms=3, label="(mean confidence, accuracy)")
        ax.plot([0, 1], [0, 1], "k--", lw=1)
        t = 1.0 if key == "before" else calibration["temperature"]
        ax.set_title(f"{key} (T = {t:.2f}): ECE {part['ece']:.3f}, NLL {part['nll']:.3f}",
                     fontsize=9)
        ax.set_xlabel("confidence (top class)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy")
    axes[0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    save_figure(fig, path)


def training_curves_figure(train_dir: str | Path, path: str | Path) -> bool:
    """Validation accuracy by epoch of every classifier the study trained, one panel per kind of
    run (strategy, or real-only), from the dvclive curves under ``train_dir/<run>``. Returns False
    (and writes nothing) when there are none."""
    curves: dict[str, list[tuple[str, pd.DataFrame]]] = {}
    for tsv in sorted(Path(train_dir).glob("*/plots/metrics/val_accuracy.tsv")):
        run = tsv.parents[2].name
        group = run.split("-")[0]
        curves.setdefault(group, []).append((run, pd.read_csv(tsv, sep="\t")))
    if not curves:
        return False
    plt = _pyplot()
    n = len(curves)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False,
                             sharey=True)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, (group, runs) in zip(axes.flat, curves.items(), strict=False):
        for _, t in runs:
            ax.plot(t["step"], t["val_accuracy"], lw=0.8, alpha=0.7)
        ax.set_title(f"{group} ({len(runs)} runs)", fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("validation accuracy", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    return True
