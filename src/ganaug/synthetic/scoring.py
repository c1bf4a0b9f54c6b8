"""Score every synthetic image and describe the pool: the score stage's work, in one place, for
the stage and for iterative refinement alike.

Per image: the real-data classifier's confidence in the intended label and its prediction, and
the GAN family's discriminator scores (``realism`` always, ``d_confidence`` where the
discriminator has a class head); for a translation family the source image and class; the
distances to the nearest real training and test image. For the pool: FID/KID overall and per
class, precision/recall/density/coverage, the pixel spread per class against the real images',
and the nearest-neighbour copy heuristic (metrics key ``memorisation``, which the report reads).

The score directory (written atomically) holds ``scores.csv`` (one row per pool image) and
``features.npz`` (the scorer's penultimate features of the pool and of the real training
images, which selection and refinement reuse).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ganaug.errors import DataFileError
from ganaug.io import atomic_path, load_npz
from ganaug.metrics.diagnostics import nn_copy_heuristic, prdc_report
from ganaug.metrics.fid import compare

log = logging.getLogger(__name__)

SCORE_COLUMNS = ["index", "label", "confidence", "predicted", "predicted_prob", "realism"]
COLLAPSE_RATIO = 0.5  # synthetic spread below this share of the real spread is flagged


@dataclass
class Scores:
    """A score directory in memory: the table and the scorer-space features."""

    table: pd.DataFrame
    pool_features: np.ndarray   # (N, D) float32, row i = pool image i
    real_features: np.ndarray   # (M, D) float32, the real training images
    real_labels: np.ndarray     # (M,)


def save_scores(out_dir: str | Path, scores: Scores) -> None:
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        scores.table.to_csv(tmp / "scores.csv", index=False)
        np.savez(tmp / "features.npz", pool=scores.pool_features, real=scores.real_features,
                 real_labels=scores.real_labels)


def load_scores(score_dir: str | Path) -> Scores:
    """Read a score directory; a missing file or column is a DataFileError naming it."""
    path = Path(score_dir) / "scores.csv"
    try:
        table = pd.read_csv(path)
    except FileNotFoundError as exc:
        raise DataFileError(f"{path}: file not found") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataFileError(f"{path}: not a readable score table ({exc})") from exc
    missing = [c for c in SCORE_COLUMNS if c not in table.columns]
    if missing:
        raise DataFileError(f"{path}: missing columns {missing}; written by another version?")
    if not np.array_equal(table["index"].to_numpy(), np.arange(len(table))):
        raise DataFileError(f"{path}: the index column must be 0..N-1 in order")
    feats = load_npz(Path(score_dir) / "features.npz", ("pool", "real", "real_labels"))
    if len(feats["pool"]) != len(table):
        raise DataFileError(f"{score_dir}: features.npz has {len(feats['pool'])} pool rows for "
                            f"{len(table)} scores")
    return Scores(table, feats["pool"], feats["real"], feats["real_labels"])


def scorer_temperature(payload: dict[str, Any]) -> float:
    """The temperature the scorer's checkpoint records (1: not calibrated)."""
    t = payload.get("meta", {}).get("temperature", 1.0)
    if not (isinstance(t, int | float) and np.isfinite(t) and t > 0):
        raise DataFileError(f"the scorer checkpoint records an invalid temperature {t!r}")
    return float(t)


def scorer_features(scorer: Any, x: np.ndarray, batch_size: int, device: Any) -> np.ndarray:
    """The scorer's penultimate features ``(N, D)`` float32 of uint8 images."""
    from ganaug.inference import batched

    return batched(scorer.features, x, batch_size, device).numpy()  # float32 already


def score_images(images: np.ndarray, labels: np.ndarray, scorer: Any, gan: Any,
                 batch_size: int, device: Any, temperature: float = 1.0
                 ) -> tuple[pd.DataFrame, np.ndarray]:
    """One row per image and the scorer features ``(N, D)`` float32.

    ``images``: uint8 ``(N, C, H, W)`` (a memmap is fine, read a batch at a time); ``labels``:
    the intended labels; ``gan``: a :class:`~ganaug.gan.LoadedGan` (its family's discriminator
    scores become columns). Columns: ``confidence`` = p(intended label) under the scorer's
    ``softmax(logits / temperature)`` (the calibrated probability when the scorer was
    temperature-scaled), ``predicted`` / ``predicted_prob`` = its argmax, then the
    discriminator's scores.
    """
    import torch

    from ganaug.inference import batched

    scorer = scorer.eval()
    disc = gan.discriminator.eval()
    if hasattr(scorer, "classify"):  # one forward pass gives both: forward = classify(features)
        def both(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            f = scorer.features(x)
            return f, torch.softmax(scorer.classify(f).float() / temperature, 1)

        feats_t, probs_t = batched(both, images, batch_size, device)
        feats, probs = feats_t.numpy(), probs_t.numpy()
    else:  # a registered classifier without classify(): two passes
        probs = batched(lambda x: torch.softmax(scorer(x).float() / temperature, 1), images,
                        batch_size, device).numpy()
        feats = scorer_features(scorer, images, batch_size, device)
    labels = np.asarray(labels, np.int64)
    names = gan.family.score_names
    disc_out = batched(lambda x, y: torch.stack(  # (N, S): each batch with its images' labels
        [gan.family.disc_scores(disc, x, y)[n].float() for n in names], 1),
        images, batch_size, device, labels)
    columns = {name: disc_out[:, j].numpy() for j, name in enumerate(names)}
    table = pd.DataFrame({
        "index": np.arange(len(labels)),
        "label": labels,
        "confidence": probs[np.arange(len(labels)), labels],
        "predicted": probs.argmax(1),
        "predicted_prob": probs.max(1),
        **columns,
    })
    return table, feats


def fid_subset(labels: np.ndarray, per_class: int | None, seed: int) -> np.ndarray:
    """Sorted indices of at most ``per_class`` images of each class (all when None), seeded."""
    labels = np.asarray(labels)
    if per_class is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(keep))


def fid_report(real_feats: np.ndarray, real_labels: np.ndarray, fake_feats: np.ndarray,
               fake_labels: np.ndarray, classes: list[str], *, feature_space: str,
               subset_size: int, subsets: int, seed: int, resize: str = "none") -> dict[str, Any]:
    """FID/KID overall and per class (each class against the real images of that class)."""
    kw = dict(feature_space=feature_space, subset_size=subset_size, subsets=subsets, seed=seed,
              resize=resize)
    report = {"overall": compare(real_feats, fake_feats, **kw), "per_class": {}}
    for c, name in enumerate(classes):
        report["per_class"][name] = compare(real_feats[real_labels == c],
                                            fake_feats[fake_labels == c], **kw)
    return report


def kid_settings(cfg: Any) -> dict[str, Any]:
    """The KID knobs of the ``score`` section (a config or the declared params dict), so every
    FID/KID of a study (pool, selections, refinement rounds) is computed the same way."""
    get = cfg.get if isinstance(cfg, dict) else (lambda k: getattr(cfg, k))
    return {"subset_size": get("kid_subset_size"), "subsets": get("kid_subsets"),
            "seed": get("seed")}


def chosen_vs_real(scores: Scores, chosen: np.ndarray, cfg: Any) -> dict[str, Any]:
    """FID/KID of the chosen pool images against the real training images (scorer space)."""
    return compare(scores.real_features, scores.pool_features[chosen], feature_space="scorer",
                   **kid_settings(cfg))


def _pixel_spread(images: np.ndarray, index: np.ndarray, chunk: int) -> float | None:
    """Mean over pixels of the standard deviation across ``images[index]`` (values in [0, 1]),
    accumulated in chunks so a memory-mapped pool is never loaded whole; None for fewer than two
    images."""
    from ganaug.inference import release_pages

    if len(index) < 2:
        return None
    total = total_sq = 0.0
    for start in range(0, len(index), chunk):
        rows = index[start:start + chunk]
        x = np.asarray(images[rows], dtype=np.float64).reshape(len(rows), -1) / 255.0
        total = total + x.sum(axis=0)
        total_sq = total_sq + np.square(x).sum(axis=0)
        release_pages(images)  # else every page of the pool's file stays resident (2.3 GB at 1M)
    mean = total / len(index)
    var = np.maximum(total_sq / len(index) - np.square(mean), 0.0)
    return float(np.sqrt(var).mean())


def pixel_diversity(x_real: np.ndarray, y_real: np.ndarray, images: np.ndarray,
                    labels: np.ndarray, classes: list[str], chunk: int = 4096) -> dict[str, Any]:
    """How much the synthetic images of each class vary, next to the real ones: the mean per-pixel
    standard deviation within the class, for real and synthetic images, and their ratio.

    A conditional GAN that collapsed onto a few outputs per class (the same face whatever the
    noise) shows a ratio near 0 while its FID in a small feature space can still look moderate;
    classes under ``COLLAPSE_RATIO`` are listed in ``collapsed``. A spread that cannot be
    measured (fewer than two images) is None (JSON null), and so is its ratio.
    """
    per_class = {}
    for c, name in enumerate(classes):
        real = _pixel_spread(x_real, np.flatnonzero(y_real == c), chunk)
        fake = _pixel_spread(images, np.flatnonzero(labels == c), chunk)
        ratio = fake / real if real and fake is not None else None
        per_class[name] = {"real": real, "synthetic": fake, "ratio": ratio}
    ratios = [v["ratio"] for v in per_class.values() if v["ratio"] is not None]
    return {"measure": "mean per-pixel standard deviation within a class, pixels in [0, 1]",
            "per_class": per_class,
            "mean_ratio": float(np.mean(ratios)) if ratios else None,
            "collapse_threshold": COLLAPSE_RATIO,
            "collapsed": [n for n, v in per_class.items()
                          if v["ratio"] is not None and v["ratio"] < COLLAPSE_RATIO]}


def score_summary(table: pd.DataFrame, classes: list[str],
                  extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """Mean scores and agreement (predicted == intended), overall and per class."""
    def summarise(t: pd.DataFrame) -> dict[str, Any]:
        out = {"n": int(len(t)), "mean_confidence": _mean(t.confidence),
               "mean_realism": _mean(t.realism),
               "agreement": _mean(t.predicted == t.label)}
        out.update({f"mean_{name}": _mean(t[name]) for name in extra})
        return out

    return {"overall": summarise(table),
            "per_class": {name: summarise(table[table.label == c]) for c, name in enumerate(classes)}}


def _mean(series: pd.Series) -> float | None:
    return float(series.mean()) if len(series) else None


@dataclass
class PoolScores:
    scores: Scores
    metrics: dict[str, Any]


def run_score(images: np.ndarray, labels: np.ndarray, sources: np.ndarray | None, scorer: Any,
              gan: Any, data: Any, cfg: Any, device: Any, temperature: float = 1.0) -> PoolScores:
    """Everything the score stage computes in the scorer's feature space (Inception aside).

    ``images``/``labels``: the pool; ``sources``: ``(N, 2)`` source index and class per image
    (-1: made from noise), or None; ``data``: the prepared source dataset; ``cfg``: the
    ``score`` section.
    """
    table, fake_feats = score_images(images, labels, scorer, gan, cfg.batch_size, device,
                                     temperature)
    if sources is not None:
        table["source_index"], table["source_label"] = sources[:, 0], sources[:, 1]
    x_real, y_real = data.split("train")
    real_feats = scorer_features(scorer, x_real, cfg.batch_size, device)
    subset = fid_subset(labels, cfg.fid_per_class, cfg.seed)
    if len(subset) == len(labels):  # the whole pool: no copy of its features (0.5 GB at 1M)
        fid_feats, fid_labels = fake_feats, labels
    else:
        fid_feats, fid_labels = fake_feats[subset], labels[subset]
    prdc_subset = fid_subset(labels, cfg.prdc_per_class, cfg.seed)
    classes = data.classes
    metrics: dict[str, Any] = {
        "scorer_temperature": temperature,
        "fid_kid": fid_report(real_feats, y_real, fid_feats, fid_labels, classes,
                              feature_space="scorer", **kid_settings(cfg)),
        "prdc": prdc_report(real_feats, y_real, fake_feats[prdc_subset], labels[prdc_subset],
                            classes, cfg.prdc_k),
        "scores": score_summary(table, classes, tuple(gan.family.score_names[1:])),
        "diversity": pixel_diversity(x_real, y_real, images, labels, classes),
    }
    mem, per_image = nn_copy_check(fake_feats, labels, real_feats, y_real, scorer, data, cfg,
                                   device)
    metrics["memorisation"] = mem
    for name, values in per_image.items():
        table[name] = values
    _warn(metrics)
    return PoolScores(Scores(table, fake_feats, real_feats, y_real), metrics)


def nn_copy_check(fake_feats: np.ndarray, labels: np.ndarray, real_feats: np.ndarray,
                  y_real: np.ndarray, scorer: Any, data: Any, cfg: Any, device: Any
                  ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """:func:`ganaug.metrics.diagnostics.nn_copy_heuristic` with the source's test split and, as the
    reference that copies nothing, its validation split."""
    x_test, y_test = data.split("test")
    x_val, y_val = data.split("val")
    if len(y_test) == 0:
        return ({"note": "no test images: the copy heuristic was not measured"},
                {"nn_train_dist": np.full(len(labels), np.nan)})
    test_feats = scorer_features(scorer, x_test, cfg.batch_size, device)
    val_feats = (scorer_features(scorer, x_val, cfg.batch_size, device) if len(y_val)
                 else np.zeros((0, real_feats.shape[1]), np.float32))
    return nn_copy_heuristic(fake_feats, labels, real_feats, y_real, test_feats, y_test,
                             val_feats, y_val, seed=cfg.seed)


def _warn(metrics: dict[str, Any]) -> None:
    div, mem = metrics["diversity"], metrics["memorisation"]
    if div["collapsed"]:
        log.warning("synthetic images vary less than %.0f%% as much as the real ones in %s: the "
                    "GAN may have collapsed", 100 * COLLAPSE_RATIO, ", ".join(div["collapsed"]))
    if mem.get("copying"):
        log.warning("only %.1f%% of the synthetic images are closer to a test image than to a "
                    "training image (real held-out images: %.1f%%): the GAN may copy its "
                    "training images", 100 * mem["fraction_closer_to_test"],
                    100 * mem["reference_fraction"])
