"""Evaluate a classifier on a test set: accuracy, macro-F1, per-class accuracy, confusion matrix.

A target dataset is first brought to the source's format: its classes are matched to the source's
by name (images of classes the source lacks are dropped and counted), and its images are converted
to the source's channels and size. Each conversion is recorded in the metrics.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganaug.data import Prepared
from ganaug.errors import DataFileError
from ganaug.inference import batched

log = logging.getLogger(__name__)


def align_to_source(target: Prepared, source: Prepared, name: str = "target"
                    ) -> tuple[np.ndarray, np.ndarray, dict]:
    """Target test images in the source's format, labels in the source's class indices.

    Classes are matched by exact name. A target class that matches a source class only up to
    case or surrounding spaces (``Angry`` for ``angry``) is an error that says to map it with
    ``class_map``: dropping it silently would score the classifier on the other classes alone.
    So is a target that shares no class with the source. Images of other classes the source
    lacks are dropped, counted and logged.
    """
    x, y = target.split("test")
    src_index = {name: i for i, name in enumerate(source.classes)}
    loose = {_loose(c): c for c in source.classes}
    near = {c: loose[_loose(c)] for c in target.classes
            if c not in src_index and _loose(c) in loose}
    if near:
        # Quoted, so that the mapping pastes into params.yaml as is (" 3" and 3 would not).
        pairs = ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in near.items())
        raise DataFileError(f"{name}: classes {sorted(near)} differ from the source's only in case "
                            f"or spaces; map them in params.yaml (datasets.{name}.class_map: "
                            f"{{{pairs}}})")
    mapping = np.array([src_index.get(name, -1) for name in target.classes], dtype=np.int64)
    keep = mapping[y] >= 0
    info: dict[str, Any] = {
        "dropped_images": int((~keep).sum()),
        "classes_not_in_source": [n for n in target.classes if n not in src_index],
        "classes_missing_from_target": [n for n in source.classes if n not in target.classes],
    }
    if len(y) and not keep.any():
        raise DataFileError(f"{name}: none of its classes {target.classes} is a class of the "
                            f"source {source.classes}; map them with datasets.{name}.class_map")
    if info["dropped_images"]:
        log.warning("%s: %d test images of classes the source lacks (%s) are not evaluated", name,
                    info["dropped_images"],
                    ", ".join(json.dumps(c, ensure_ascii=False) for c in info["classes_not_in_source"]))
    x, y = x[keep], mapping[y[keep]]
    x, info["conversion"] = convert_images(x, source.image_shape, name)
    return x, y, info


def convert_images(x: np.ndarray, shape: tuple[int, int, int], name: str = "target"
                   ) -> tuple[np.ndarray, list[str]]:
    """uint8 ``(N, C, H, W)`` -> uint8 ``(N, *shape)``: grey<->RGB and an antialiased resize."""
    steps: list[str] = []
    c, h, w = shape
    t = torch.from_numpy(np.ascontiguousarray(x)).float()
    if t.shape[1] != c:
        if c == 1 and t.shape[1] == 3:  # ITU-R BT.601 luma, as PIL's convert("L")
            t = (t * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
            steps.append("rgb->grey (BT.601 luma)")
        elif c == 3 and t.shape[1] == 1:
            t = t.repeat(1, 3, 1, 1)
            steps.append("grey->rgb (repeat)")
        else:
            raise DataFileError(f"{name}: cannot convert its {t.shape[1]}-channel images to the "
                                f"source's {c} channels (grey and RGB convert)")
    if tuple(t.shape[2:]) != (h, w):
        steps.append(f"resize {t.shape[2]}x{t.shape[3]}->{h}x{w} (bilinear, antialias)")
        t = F.interpolate(t, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    return t.round().clamp(0, 255).to(torch.uint8).numpy(), steps


def confusion_matrix(y: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``cm[actual, predicted]`` counts, ``(K, K)`` int64."""
    return np.bincount(y * num_classes + pred, minlength=num_classes**2).reshape(num_classes,
                                                                                  num_classes)


def metrics_from_confusion(cm: np.ndarray, present: np.ndarray) -> dict[str, Any]:
    """Accuracy, macro-F1 and per-class accuracy (recall) over the ``present`` classes.

    Same definitions as scikit-learn's ``accuracy_score`` and ``f1_score(average="macro",
    labels=present, zero_division=0)`` (a test checks they agree); computed here from the confusion
    matrix because importing ``sklearn.metrics`` costs about a second in each of the study's many
    evaluate processes.
    """
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(1).astype(np.float64)
    predicted = cm.sum(0).astype(np.float64)
    denom = support + predicted  # F1 = 2 TP / (2 TP + FP + FN) = 2 TP / (support + predicted)
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return {
        "accuracy": float(tp.sum() / cm.sum()),
        "macro_f1": float(f1[present].mean()),
        "recall": np.divide(tp, support, out=np.zeros_like(tp), where=support > 0),
    }


def evaluate_classifier(model: nn.Module, x: np.ndarray, y: np.ndarray, classes: list[str],
                        batch_size: int, device: torch.device) -> dict[str, Any]:
    """Metrics over the classes present in ``y`` (a target may lack some source classes)."""
    if len(y) == 0:
        raise DataFileError("evaluate: the test set is empty")
    y = np.asarray(y, np.int64)
    pred = batched(model, x, batch_size, device).argmax(1).numpy()
    present = np.unique(y)
    cm = confusion_matrix(y, pred, len(classes))
    m = metrics_from_confusion(cm, present)
    return {
        "n": int(len(y)),
        "accuracy": m["accuracy"],
        "macro_f1": m["macro_f1"],
        "per_class_accuracy": {classes[c]: float(m["recall"][c]) for c in present},
        "confusion": cm.tolist(),
        "predictions": pred,
    }


def mean_of_members(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One run's metrics from its members' (:func:`evaluate_classifier` on the same test set):
    accuracy, macro-F1 and per-class accuracy are the members' means, the confusion matrix
    their sum, ``predictions`` every member's in turn, and ``members`` each one's accuracy and
    macro-F1 (one member: its metrics unchanged)."""
    if len(results) == 1:
        return results[0]
    first = results[0]
    return {
        "n": first["n"],
        "accuracy": float(np.mean([r["accuracy"] for r in results])),
        "macro_f1": float(np.mean([r["macro_f1"] for r in results])),
        "per_class_accuracy": {c: float(np.mean([r["per_class_accuracy"][c] for r in results]))
                               for c in first["per_class_accuracy"]},
        "confusion": np.sum([r["confusion"] for r in results], axis=0).tolist(),
        "predictions": np.concatenate([r["predictions"] for r in results]),
        "members": [{"accuracy": r["accuracy"], "macro_f1": r["macro_f1"]} for r in results],
    }


def _loose(name: str) -> str:
    """A class name with case and every run of spaces ignored: ``Angry``, `` angry`` and
    ``an  gry``-like variants of one name meet here."""
    return " ".join(name.split()).casefold()
