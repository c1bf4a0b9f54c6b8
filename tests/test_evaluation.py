"""Evaluation metrics against scikit-learn, and bringing a target dataset to the source format."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from ganaug.data import Prepared
from ganaug.metrics.evaluation import (
    align_to_source,
    confusion_matrix,
    convert_images,
    evaluate_classifier,
    metrics_from_confusion,
)


def empty(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((0, *shape), np.uint8), np.zeros(0, np.int64)


def prepared(x_test: np.ndarray, y_test: np.ndarray, classes: list[str]) -> Prepared:
    e = empty(x_test.shape[1:])
    return Prepared(splits={"train": e, "val": e, "test": (x_test, np.asarray(y_test, np.int64))},
                    classes=classes, meta={})


# --------------------------------------------------------------------------------------------
# Confusion matrix and metrics
# --------------------------------------------------------------------------------------------


def test_confusion_matrix_by_hand():
    y = np.array([0, 0, 1, 2, 2, 2])
    pred = np.array([0, 1, 1, 2, 0, 2])
    cm = confusion_matrix(y, pred, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_metrics_agree_with_sklearn_including_absent_classes(seed):
    rng = np.random.default_rng(seed)
    k = 6
    present_pool = np.array([0, 1, 2, 4])  # classes 3 and 5 never occur in y but may be predicted
    y = rng.choice(present_pool, 80)
    pred = np.where(rng.uniform(size=80) < 0.5, y, rng.integers(0, k, 80))
    cm = confusion_matrix(y, pred, k)
    assert np.array_equal(cm, skm.confusion_matrix(y, pred, labels=np.arange(k)))
    present = np.unique(y)
    m = metrics_from_confusion(cm, present)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["macro_f1"] == pytest.approx(
        skm.f1_score(y, pred, average="macro", labels=present, zero_division=0))
    recall = skm.recall_score(y, pred, average=None, labels=np.arange(k), zero_division=0)
    assert np.allclose(m["recall"], recall)
    assert m["recall"][3] == 0 and m["recall"][5] == 0


def test_macro_f1_of_a_class_never_predicted_is_zero():
    y = np.array([0, 0, 1, 1])
    pred = np.array([0, 0, 0, 0])
    m = metrics_from_confusion(confusion_matrix(y, pred, 2), np.array([0, 1]))
    # class 0: P = 1/2, R = 1 -> F1 = 2/3; class 1: never predicted -> 0.
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0) / 2)
    assert m["accuracy"] == 0.5
    assert m["recall"].tolist() == [1.0, 0.0]


def test_evaluate_classifier_uses_only_present_classes():
    class Fixed(torch.nn.Module):
        """Predicts class (pixel value // 100): images 0, 100, 200 -> classes 0, 1, 2."""

        def forward(self, x):  # x in [-1, 1]
            v = ((x[:, 0, 0, 0] + 1) * 127.5).round().long() // 100
            return torch.nn.functional.one_hot(v, 4).float()

    values = np.array([0, 0, 100, 200, 200])
    x = np.broadcast_to(values[:, None, None, None], (5, 1, 2, 2)).astype(np.uint8)
    y = np.array([0, 1, 1, 2, 0])
    out = evaluate_classifier(Fixed(), x, y, ["a", "b", "c", "d"], batch_size=2,
                              device=torch.device("cpu"))
    assert out["n"] == 5
    assert out["accuracy"] == pytest.approx(3 / 5)
    assert out["predictions"].tolist() == [0, 0, 1, 2, 2]
    assert set(out["per_class_accuracy"]) == {"a", "b", "c"}  # "d" is absent from y
    assert out["per_class_accuracy"] == pytest.approx({"a": 0.5, "b": 0.5, "c": 1.0})
    assert out["macro_f1"] == pytest.approx(
        skm.f1_score(y, out["predictions"], average="macro", labels=[0, 1, 2], zero_division=0))
    with pytest.raises(ValueError, match="empty"):
        evaluate_classifier(Fixed(), x[:0], y[:0], ["a"], 2, torch.device("cpu"))


# --------------------------------------------------------------------------------------------
# Image conversion and class alignment
# --------------------------------------------------------------------------------------------


def test_convert_same_format_is_identity_with_no_steps():
    x = np.random.default_rng(0).integers(0, 256, (3, 1, 8, 8), dtype=np.uint8)
    out, steps = convert_images(x, (1, 8, 8))
    assert steps == []
    assert np.array_equal(out, x) and out.dtype == np.uint8


def test_convert_grey_to_rgb_repeats_the_channel():
    x = np.random.default_rng(1).integers(0, 256, (2, 1, 5, 5), dtype=np.uint8)
    out, steps = convert_images(x, (3, 5, 5))
    assert out.shape == (2, 3, 5, 5)
    for c in range(3):
        assert np.array_equal(out[:, c], x[:, 0])
    assert steps == ["grey->rgb (repeat)"]


def test_convert_rgb_to_grey_uses_bt601_luma():
    x = np.zeros((1, 3, 2, 2), np.uint8)
    x[0, 0], x[0, 1], x[0, 2] = 100, 200, 50
    out, steps = convert_images(x, (1, 2, 2))
    # 0.299 * 100 + 0.587 * 200 + 0.114 * 50 = 153.0
    assert out.shape == (1, 1, 2, 2) and np.all(out == 153)
    assert len(steps) == 1 and "rgb->grey" in steps[0]
    white = np.full((1, 3, 2, 2), 255, np.uint8)
    assert np.all(convert_images(white, (1, 2, 2))[0] == 255)  # weights sum to 1, no overflow


def test_convert_resize_records_the_step_and_keeps_a_constant_image():
    x = np.full((2, 1, 8, 8), 77, np.uint8)
    out, steps = convert_images(x, (1, 4, 4))
    assert out.shape == (2, 1, 4, 4) and np.all(out == 77)
    assert steps == ["resize 8x8->4x4 (bilinear, antialias)"]
    up, steps = convert_images(np.full((1, 3, 4, 4), 255, np.uint8), (1, 12, 12))
    assert up.shape == (1, 1, 12, 12) and np.all(up == 255)
    assert len(steps) == 2 and "rgb->grey" in steps[0] and "resize 4x4->12x12" in steps[1]


def test_convert_rejects_an_unsupported_channel_count():
    with pytest.raises(ValueError, match="2-channel"):
        convert_images(np.zeros((1, 2, 4, 4), np.uint8), (3, 4, 4))


def test_align_to_source_maps_classes_by_name_and_counts_dropped_images():
    source = prepared(np.zeros((2, 1, 8, 8), np.uint8), np.array([0, 1]), ["a", "b", "c"])
    # Target classes in another order, one the source lacks; RGB 4x4 images.
    labels = np.array([0, 1, 2, 0, 1, 2, 2])
    x = np.stack([np.full((3, 4, 4), 10 * (i + 1), np.uint8) for i in range(len(labels))])
    target = prepared(x, labels, ["b", "x", "a"])
    x_out, y_out, info = align_to_source(target, source)
    keep = labels != 1  # "x" images are dropped
    assert info["dropped_images"] == 2
    assert info["classes_not_in_source"] == ["x"]
    assert info["classes_missing_from_target"] == ["c"]
    assert y_out.tolist() == [1, 0, 1, 0, 0]  # b -> 1, a -> 0
    assert x_out.shape == (5, 1, 8, 8) and x_out.dtype == np.uint8
    # Each image is constant, so its value survives conversion; the order is kept.
    assert x_out[:, 0, 0, 0].tolist() == [10 * (i + 1) for i in np.flatnonzero(keep)]
    assert len(info["conversion"]) == 2


def test_align_to_source_with_matching_format_and_classes_is_identity():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (6, 1, 8, 8), dtype=np.uint8)
    y = rng.integers(0, 3, 6)
    source = prepared(x[:2], y[:2], ["a", "b", "c"])
    x_out, y_out, info = align_to_source(prepared(x, y, ["a", "b", "c"]), source)
    assert np.array_equal(x_out, x) and np.array_equal(y_out, y)
    assert info == {"dropped_images": 0, "classes_not_in_source": [],
                    "classes_missing_from_target": [], "conversion": []}


def test_a_run_of_several_members_reports_their_mean_and_each_one():
    from ganaug.metrics.evaluation import mean_of_members

    y = np.array([0, 0, 1, 1])
    a = {"n": 4, "accuracy": 1.0, "macro_f1": 1.0, "per_class_accuracy": {"a": 1.0, "b": 1.0},
         "confusion": [[2, 0], [0, 2]], "predictions": y}
    b = {"n": 4, "accuracy": 0.5, "macro_f1": 0.4, "per_class_accuracy": {"a": 1.0, "b": 0.0},
         "confusion": [[2, 0], [2, 0]], "predictions": np.array([0, 0, 0, 0])}
    m = mean_of_members([a, b])
    assert m["accuracy"] == 0.75 and m["macro_f1"] == pytest.approx(0.7)
    assert m["per_class_accuracy"] == {"a": 1.0, "b": 0.5}
    assert m["confusion"] == [[4, 0], [2, 2]]
    assert m["predictions"].tolist() == [0, 0, 1, 1, 0, 0, 0, 0]
    assert m["members"] == [{"accuracy": 1.0, "macro_f1": 1.0}, {"accuracy": 0.5, "macro_f1": 0.4}]
    assert mean_of_members([a]) is a  # one member: as before


def test_a_saved_run_of_members_loads_every_member(tmp_path):
    from ganaug.errors import CheckpointError
    from ganaug.models import CLASSIFIERS
    from ganaug.models.saved import (
        classifier_payload,
        load_checkpoint,
        load_classifier,
        load_members,
        save_checkpoint,
    )

    kwargs = {"in_channels": 1, "num_classes": 3, "image_size": 8, "width": 4}
    models = []
    for seed in range(3):
        torch.manual_seed(seed)
        models.append(CLASSIFIERS.get("small_cnn")(**kwargs))
    path = tmp_path / "run.pt"
    save_checkpoint(path, classifier_payload(models[0], "small_cnn", kwargs, {}, more=models[1:]))
    loaded, _ = load_members(path)
    assert len(loaded) == 3
    for saved, back in zip(models, loaded, strict=True):
        for k, v in saved.state_dict().items():
            assert torch.equal(v, back.state_dict()[k]), k
    first, _ = load_classifier(path)  # consumers of one model get member 0
    assert torch.equal(first.state_dict()["head.1.weight"], models[0].state_dict()["head.1.weight"])
    save_checkpoint(path, classifier_payload(models[0], "small_cnn", kwargs, {}))
    assert len(load_members(path)[0]) == 1
    payload = load_checkpoint(path, kind="classifier")
    payload["members"] = {"not": "a list"}
    save_checkpoint(path, payload)
    with pytest.raises(CheckpointError, match="members"):
        load_members(path)
