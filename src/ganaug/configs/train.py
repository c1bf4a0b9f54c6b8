"""The ``classifier`` and ``scorer`` sections: a classifier's training recipe."""

from __future__ import annotations

from typing import Literal

from pydantic.dataclasses import dataclass

from ganaug.params import (
    STRICT,
    positive,
)


@dataclass(config=STRICT, frozen=True)
class TrainConfig:
    """A classifier's training recipe (section ``classifier``; seeds come from ``study.seeds``)."""

    arch: str = "small_cnn"
    width: int = 32
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    # Early stopping: stop after this many epochs without a better validation accuracy.
    patience: int = 8
    # Random shifts of up to this many pixels (0: off).
    max_shift: int = 0
    # Random horizontal flips (faces: yes; digits: no, they are not symmetric).
    hflip: bool = False
    # Class imbalance (FER2013: 436 disgust vs 7,215 happy): "none"; "oversample" or "undersample"
    # every class to the largest or smallest class count each epoch; "weighted": cross-entropy
    # weights N / (K * count of the class).
    balance: Literal["none", "oversample", "undersample", "weighted"] = "none"
    # "imagenet": start from torchvision's ImageNet weights (resnet18, resnet50, vgg16; width 64).
    pretrained: str | None = None
    checkpoint_every: int = 5
    # Images shown per epoch (null: one pass over the training set). Set, every classifier of a
    # study takes the same optimiser steps per epoch whatever its training set's size: with one
    # pass, a mix with 5x synthetic images trains 6x longer than the real-only baseline, and
    # its gain then mixes what the images add with what the longer training adds. Shuffled
    # passes follow one another, the last cut short; a larger set shows a fresh part each epoch.
    epoch_images: int | None = None
    # Learning-rate schedule over `epochs` (per optimiser step): "constant", "cosine" (to 0) or
    # "onecycle" (up to lr, then cosine down); a linear warm-up over `warmup_epochs` first.
    schedule: Literal["constant", "cosine", "onecycle"] = "constant"
    warmup_epochs: float = 0.0
    # Early stopping copes with a noisy validation set: no stop before `min_epochs`, and the
    # patience (and the best epoch) read an exponential moving average of the validation
    # accuracy with this weight on the past (0: the raw accuracy).
    min_epochs: int = 0
    val_smoothing: float = 0.0
    # More augmentations (FER work uses them): rotations of up to this many degrees, random
    # erasing of a rectangle (2-33% of the image) with this probability, label smoothing.
    max_rotation: float = 0.0
    erasing_p: float = 0.0
    label_smoothing: float = 0.0
    # Device habits (CPU runs stay bit-deterministic): bf16 autocast on CUDA devices that support
    # it (never on the CPU or MPS), channels_last memory format (CUDA and the CPU, where it trains
    # small CNNs faster; not MPS), torch.compile.
    amp: bool = True
    channels_last: bool = True
    compile: bool = False

    def __post_init__(self) -> None:
        # Whether `arch` exists and takes `pretrained`: ganaug.validate (the model registry).
        positive(width=self.width, epochs=self.epochs, batch_size=self.batch_size,
                  patience=self.patience, checkpoint_every=self.checkpoint_every)
        if self.epoch_images is not None:
            positive(epoch_images=self.epoch_images)
        if self.lr <= 0:
            raise ValueError(f"lr: must be > 0, got {self.lr}")
        if self.weight_decay < 0 or self.max_shift < 0:
            raise ValueError("weight_decay and max_shift must be >= 0")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(f"warmup_epochs: must be in [0, epochs), got {self.warmup_epochs}")
        if not 0 <= self.min_epochs <= self.epochs:
            raise ValueError(f"min_epochs: must be in [0, epochs], got {self.min_epochs}")
        for key in ("val_smoothing", "label_smoothing"):
            if not 0 <= getattr(self, key) < 1:
                raise ValueError(f"{key}: must be in [0, 1), got {getattr(self, key)}")
        if not 0 <= self.erasing_p <= 1:
            raise ValueError(f"erasing_p: must be in [0, 1], got {self.erasing_p}")
        if not 0 <= self.max_rotation <= 180:
            raise ValueError(f"max_rotation: must be in [0, 180] degrees, got {self.max_rotation}")


@dataclass(config=STRICT, frozen=True)
class ClassifierConfig(TrainConfig):
    """The study's classifiers (section ``classifier``): a training recipe, run ``members``
    times per run."""

    # Classifiers trained per run (baseline, mix, curve point), each from its own seed; the
    # run's test metrics are their mean. More members shrink the classifier's own seed-to-seed
    # noise in every paired gain (README: "Replicates and verdicts") at members x the cost.
    members: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        positive(members=self.members)


@dataclass(config=STRICT, frozen=True)
class ScorerConfig(TrainConfig):
    """The real-data classifier that scores synthetic images (section ``scorer``)."""

    # Temperature scaling on the validation split after training (Guo et al. 2017): the
    # confidence that ranks and thresholds synthetic images is then a calibrated probability.
    calibrate: bool = True
    seed: int = 0
