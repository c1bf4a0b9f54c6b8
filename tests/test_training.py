"""Classifier training: class balancing, augmentation, determinism, resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganaug.config import TrainConfig
from ganaug.training import (
    augment,
    balanced_class_weights,
    epoch_order,
    train_classifier,
)


def test_balanced_class_weights_by_hand():
    # N = 8 over the 2 present classes: 8 / (2 * 2) = 2 and 8 / (2 * 6) = 2/3; absent class: 0.
    np.testing.assert_allclose(balanced_class_weights(np.array([2, 6, 0])), [2.0, 2 / 3, 0.0])


def test_weighted_loss_makes_each_class_count_the_same():
    counts = np.array([3, 9, 12])
    w = balanced_class_weights(counts)
    np.testing.assert_allclose(w * counts, np.full(3, counts.sum() / 3))


Y = torch.tensor([0] * 2 + [1] * 5 + [2] * 3)


@pytest.mark.parametrize("balance", ["none", "weighted"])
def test_epoch_order_without_resampling_is_a_permutation(balance):
    order = epoch_order(Y, balance, torch.Generator().manual_seed(0))
    assert sorted(order.tolist()) == list(range(len(Y)))


def test_oversampling_draws_every_class_to_the_largest_and_keeps_every_image():
    order = epoch_order(Y, "oversample", torch.Generator().manual_seed(0))
    assert np.bincount(Y[order].numpy()).tolist() == [5, 5, 5]
    assert set(order.tolist()) == set(range(len(Y)))


def test_undersampling_draws_every_class_to_the_smallest_without_repeats():
    order = epoch_order(Y, "undersample", torch.Generator().manual_seed(0))
    assert np.bincount(Y[order].numpy()).tolist() == [2, 2, 2]
    assert len(set(order.tolist())) == len(order)


def test_epoch_order_is_reproducible_per_seed():
    a = epoch_order(Y, "oversample", torch.Generator().manual_seed(3))
    b = epoch_order(Y, "oversample", torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_hflip_flips_some_images_and_leaves_the_rest():
    x = torch.arange(2 * 16, dtype=torch.float32).reshape(16, 1, 1, 2)  # each row [a, a+1]
    cfg = TrainConfig(hflip=True)
    out = augment(x, cfg, torch.Generator().manual_seed(0))
    flipped = (out == x.flip(-1)).all(dim=(1, 2, 3))
    kept = (out == x).all(dim=(1, 2, 3))
    assert bool((flipped | kept).all()) and 0 < int(flipped.sum()) < 16


def test_no_augmentation_is_the_identity():
    x = torch.randn(4, 1, 8, 8)
    assert torch.equal(augment(x, TrainConfig(), torch.Generator().manual_seed(0)), x)


def _data(n_per_class=12, classes=3, size=8, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), n_per_class)
    x = rng.integers(0, 64, (len(y), 1, size, size), dtype=np.uint8)
    x[np.arange(len(y)), 0, y, :] = 255  # a learnable stripe per class
    return x, y


CFG = TrainConfig(width=4, epochs=4, batch_size=8, patience=4, checkpoint_every=2)


def _weights(result):
    return {k: v.clone() for k, v in result.model.state_dict().items()}


@pytest.mark.parametrize("balance", ["none", "oversample", "undersample", "weighted"])
def test_training_is_deterministic_for_every_balance(balance, one_thread):
    x, y = _data()
    x, y = x[:-8], y[:-8]  # imbalance: class 2 has 4 images
    cfg = TrainConfig(**{**CFG.__dict__, "balance": balance, "hflip": True, "max_shift": 1})
    a = train_classifier(x, y, x, y, 3, cfg, seed=1, device=torch.device("cpu"))
    b = train_classifier(x, y, x, y, 3, cfg, seed=1, device=torch.device("cpu"))
    for k, v in _weights(a).items():
        assert torch.equal(v, _weights(b)[k]), k


def test_resume_reaches_the_same_weights(tmp_path, monkeypatch, one_thread):
    """A run stopped after its first checkpoint and started again ends where a straight run does."""
    from ganaug.resume import ResumeFile

    x, y = _data()
    straight = train_classifier(x, y, x, y, 3, CFG, seed=0, device=torch.device("cpu"))
    resume = tmp_path / "resume.pt"
    real_save = ResumeFile.save

    def save_then_die(*args, **kwargs):
        real_save(*args, **kwargs)
        raise KeyboardInterrupt  # as if killed right after the checkpoint landed

    monkeypatch.setattr(ResumeFile, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_classifier(x, y, x, y, 3, CFG, seed=0, device=torch.device("cpu"),
                         resume_path=resume)
    monkeypatch.setattr(ResumeFile, "save", real_save)
    resumed = train_classifier(x, y, x, y, 3, CFG, seed=0, device=torch.device("cpu"),
                               resume_path=resume)
    assert resumed.state.epoch == CFG.epochs
    for k, v in _weights(straight).items():
        assert torch.equal(v, _weights(resumed)[k]), k


def test_an_empty_training_set_is_an_error():
    x, y = _data()
    with pytest.raises(ValueError, match="training set is empty"):
        train_classifier(x[:0], y[:0], x, y, 3, CFG, seed=0, device=torch.device("cpu"))


@pytest.mark.parametrize("size", [10, 25, 4])
def test_an_epoch_shows_exactly_epoch_images_in_whole_shuffled_passes(size):
    """epoch_images = 25 over 10 images: two whole passes and half a third; over more images
    than it: a part of one pass, without repeats."""
    from ganaug.training import epoch_indices

    cfg = TrainConfig(epoch_images=size)
    order = epoch_indices(Y, cfg, torch.Generator().manual_seed(0)).tolist()
    assert len(order) == size
    for start in range(0, size - len(Y) + 1, len(Y)):  # every whole pass is a permutation
        assert sorted(order[start:start + len(Y)]) == list(range(len(Y)))
    tail = order[size - size % len(Y):]
    assert len(set(tail)) == len(tail)


def test_without_epoch_images_an_epoch_is_one_pass_as_before():
    from ganaug.training import epoch_indices

    a = epoch_indices(Y, TrainConfig(), torch.Generator().manual_seed(4))
    b = epoch_order(Y, "none", torch.Generator().manual_seed(4))
    assert torch.equal(a, b)


def test_epoch_images_gives_small_and_large_sets_the_same_steps(one_thread):
    x, y = _data()
    cfg = TrainConfig(**{**CFG.__dict__, "epoch_images": 40, "patience": 10})
    small = train_classifier(x[::3], y[::3], x, y, 3, cfg, seed=0, device=torch.device("cpu"))
    large = train_classifier(x, y, x, y, 3, cfg, seed=0, device=torch.device("cpu"))
    assert small.state.epoch == large.state.epoch == cfg.epochs


@pytest.mark.parametrize("bad", [0, -3])
def test_epoch_images_must_be_positive(bad):
    with pytest.raises(ValueError, match="epoch_images"):
        TrainConfig(epoch_images=bad)


def test_classifier_members_are_validated_and_the_scorer_has_none():
    from ganaug.configs.train import ClassifierConfig, ScorerConfig

    assert ClassifierConfig().members == 1
    with pytest.raises(ValueError, match="members"):
        ClassifierConfig(members=0)
    assert "members" not in ScorerConfig.__dataclass_fields__


def test_member_seeds_keep_the_run_seed_first_and_never_collide():
    from ganaug.models.saved import member_seeds

    assert member_seeds(7, 1) == [7]
    seeds = [s for run in range(20) for s in member_seeds(run, 4)]
    assert member_seeds(7, 3)[0] == 7 and member_seeds(7, 3) == member_seeds(7, 3)
    assert len(set(seeds)) == len(seeds)


def test_each_member_resumes_from_its_own_file():
    from stages.train import member_path

    assert member_path(None, 2) is None
    assert member_path(".checkpoints/train-x.pt", 0) == ".checkpoints/train-x.pt"
    assert member_path(".checkpoints/train-x.pt", 2) == ".checkpoints/train-x-member2.pt"
    paths = {member_path("r/a b.pt", m) for m in range(4)}
    assert len(paths) == 4 and all(p.startswith("r/") for p in paths)
