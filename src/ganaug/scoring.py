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


def score_summary(table: pd.DataFrame, classes: list[str]) -> dict[str, Any]:
    """Mean scores and agreement (predicted == intended), overall and per class."""
    def summarise(t: pd.DataFrame) -> dict[str, float]:
        return {"n": int(len(t)), "mean_confidence": float(t.confidence.mean()),
                "mean_realism": float(t.realism.mean()),
                "agreement": float((t.predicted == t.label).mean())}

    return {"overall": summarise(table),
            "per_class": {name: summarise(table[table.label == c]) for c, name in enumerate(classes)}}
