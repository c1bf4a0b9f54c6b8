"""Score every synthetic image: the real-data classifier's confidence in the intended label, its
predicted label, and the discriminator's realism; plus FID/KID per class in a feature space.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ganaug.fid import compare
from ganaug.tensors import batched

log = logging.getLogger(__name__)

SCORE_COLUMNS = ["index", "label", "confidence", "predicted", "predicted_prob", "realism"]


def score_images(images: np.ndarray, labels: np.ndarray, scorer: nn.Module, disc: nn.Module,
                 batch_size: int, device: torch.device) -> tuple[pd.DataFrame, np.ndarray]:
    """One row per image and the scorer features ``(N, D)`` float32.

    ``images``: uint8 ``(N, C, H, W)`` (a memmap is fine); ``labels``: the intended labels.
    Columns: ``confidence`` = p(intended label) under the scorer, ``predicted`` / ``predicted_prob``
    = its argmax, ``realism`` = the discriminator's logit for (image, intended label).
    """
    scorer, disc = scorer.eval(), disc.eval()
    probs = batched(lambda x: torch.softmax(scorer(x), 1), images, batch_size, device).numpy()
    feats = batched(scorer.features, images, batch_size, device).numpy().astype(np.float32)
    labels_t = torch.from_numpy(np.asarray(labels, np.int64))
    realism = []
    for start in range(0, len(labels), batch_size):
        y = labels_t[start: start + batch_size].to(device)
        realism.append(batched(lambda x, y=y: disc(x, y), images[start: start + batch_size],
                               batch_size, device))
    labels = np.asarray(labels, np.int64)
    table = pd.DataFrame({
        "index": np.arange(len(labels)),
        "label": labels,
        "confidence": probs[np.arange(len(labels)), labels],
        "predicted": probs.argmax(1),
        "predicted_prob": probs.max(1),
        "realism": torch.cat(realism).numpy(),
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


COLLAPSE_RATIO = 0.5  # synthetic spread below this share of the real spread is flagged


def _pixel_spread(images: np.ndarray, index: np.ndarray, chunk: int) -> float | None:
    """Mean over pixels of the standard deviation across ``images[index]`` (values in [0, 1]),
    accumulated in chunks so a memory-mapped pool is never loaded whole; None for fewer than two
    images."""
    if len(index) < 2:
        return None
    total = total_sq = 0.0
    for start in range(0, len(index), chunk):
        rows = index[start:start + chunk]
        x = np.asarray(images[rows], dtype=np.float64).reshape(len(rows), -1) / 255.0
        total = total + x.sum(axis=0)
        total_sq = total_sq + np.square(x).sum(axis=0)
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


def score_summary(table: pd.DataFrame, classes: list[str]) -> dict[str, Any]:
    """Mean scores and agreement (predicted == intended), overall and per class."""
    def summarise(t: pd.DataFrame) -> dict[str, float]:
        return {"n": int(len(t)), "mean_confidence": float(t.confidence.mean()),
                "mean_realism": float(t.realism.mean()),
                "agreement": float((t.predicted == t.label).mean())}

    return {"overall": summarise(table),
            "per_class": {name: summarise(table[table.label == c]) for c, name in enumerate(classes)}}
