"""Typed, strictly validated views of ``params.yaml``: one frozen dataclass per section.

Unknown keys, wrong types and non-finite numbers are errors that name the key
(``ParamsError: params.yaml: gan.lr_g: Input should be a valid number, got 'fast'``). Stages read
params only through :func:`read_params`, which exposes exactly the keys a stage declares, so a
stage cannot silently depend on a key that ``dvc.yaml`` does not list for it.

This module is a pure schema: it imports nothing else from the project (only ``ganaug.errors``),
so a stage that parses a section does not depend on the GAN, model or data code. Whether a name
exists in a registry (``gan.arch``, ``classifier.arch``, ``study.strategies``) and whether the
sections agree with each other is checked by :mod:`ganaug.validate`, which the ``check_params``
stage runs on the whole file before any other stage.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import field
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import ConfigDict, ValidationError, field_validator
from pydantic.dataclasses import dataclass

from ganaug.errors import ParamsError

STRICT = ConfigDict(extra="forbid", strict=True)
T = TypeVar("T")

# Names that reach stage commands, instance names and file names (datasets, strategies, refinement
# rounds): letters, digits, "_" and "-", starting with a letter or digit. No spaces, no shell
# metacharacters, no "." (it would split a dotted params key), no "@" or "/".
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
DEVICE_NAME = re.compile(r"auto|cpu|mps|cuda(:[0-9]+)?")


def check_name(what: str, name: Any) -> str:
    """``name`` if it is a safe name (see ``SAFE_NAME``), else a ValueError naming ``what``."""
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
        raise ValueError(
            f"{what}: {name!r} is not a usable name: use 1 to 64 letters, digits, '_' or '-', "
            f"starting with a letter or digit (it becomes part of stage commands and file names)")
    return name


def check_threads(value: Any) -> int | None:
    """``threads``: a positive number of threads, or ``auto`` (None: the environment decides)."""
    if value == "auto":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"threads: {value!r} is not a thread count; use a positive integer (1 "
                         f"suits small models) or auto (every usable core; the results then "
                         f"depend on the machine's core count)")
    return value


def check_device(name: Any) -> str:
    if not isinstance(name, str) or not DEVICE_NAME.fullmatch(name):
        raise ValueError(f"device: {name!r} is not a device name; use auto, cpu, cuda, cuda:N "
                         f"or mps")
    return name


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


@dataclass(config=STRICT, frozen=True)
class PrimaryConfig:
    """The comparison declared primary before the study runs: this mix against the baseline on
    this test set, tested on its own at the report's alpha (outside the Holm family)."""

    strategy: str
    ratio: float
    # A test-set name as the report uses it: data.source (its test split), a study target, or
    # synthetic / mixed (the held-out synthetic test set, when generate.test_per_class > 0).
    test_set: str


@dataclass(config=STRICT, frozen=True)
class StudyConfig:
    """The grid that ``dvc.yaml`` expands with ``matrix:``."""

    strategies: list[str]
    ratios: list[float]
    seeds: list[int]
    targets: list[str]
    # The Classification Accuracy Score model trains on the selection made at this ratio alone.
    synthetic_only_ratio: float
    # The real-only learning curve: real images per class of each point (empty: no curve).
    real_sizes: list[int] = field(default_factory=list)
    # The first `pilot` seeds are a pilot (exploratory verdicts, the planner's SD); verdicts come
    # from the rest, the confirmatory seeds. null or 0: no pilot, every seed decides.
    pilot: int | None = None
    # The declared primary comparison {strategy, ratio, test_set} (null: none); read it as
    # `primary_comparison`. A mapping here because strict pydantic takes no dict for a nested
    # dataclass; __post_init__ parses it as strictly as any section.
    primary: dict[str, Any] | None = None

    @field_validator("primary")
    @classmethod
    def _primary_shape(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            _parse_primary(value)  # its errors then name study.primary.<key>
        return value

    def __post_init__(self) -> None:
        _no_duplicates("strategies", self.strategies)
        _no_duplicates("real_sizes", self.real_sizes)
        if any(n < 1 for n in self.real_sizes):
            raise ValueError(f"real_sizes: every size must be a number of real images per class "
                             f">= 1, got {self.real_sizes}")
        _no_duplicates("ratios", self.ratios)
        _no_duplicates("seeds", self.seeds)
        _no_duplicates("targets", self.targets)
        for name in self.strategies:  # registered? ganaug.validate checks against the registry
            check_name("strategies", name)
            if name == "none":
                raise ValueError("strategies: 'none' is the real-only baseline, which is always "
                                 "trained; do not list it")
        for name in self.targets:
            check_name("targets", name)
        if not self.strategies or not self.ratios or not self.seeds:
            raise ValueError("strategies, ratios and seeds must not be empty")
        for r in self.ratios:
            if not math.isfinite(r) or r <= 0:
                raise ValueError(
                    f"ratios: every ratio must be a positive number of synthetic images per "
                    f"real image, got {r!r} (the real-only baseline is always trained; do not list 0)"
                )
        if self.synthetic_only_ratio not in self.ratios:
            raise ValueError(
                f"synthetic_only_ratio: {self.synthetic_only_ratio!r} must be one of "
                f"ratios {self.ratios}"
            )
        if any(s < 0 for s in self.seeds):
            raise ValueError(f"seeds: seeds must be >= 0, got {self.seeds}")
        self._check_replicates()

    @property
    def primary_comparison(self) -> PrimaryConfig | None:
        return None if self.primary is None else _parse_primary(self.primary)

    @property
    def pilot_seeds(self) -> list[int]:
        return list(self.seeds[: self.pilot or 0])

    @property
    def confirmatory_seeds(self) -> list[int]:
        return list(self.seeds[self.pilot or 0:])

    def _check_replicates(self) -> None:
        if self.pilot is not None:
            if self.pilot < 0:
                raise ValueError(f"pilot: must be a number of seeds >= 0 (or null), got {self.pilot}")
            if self.pilot and len(self.seeds) - self.pilot < 2:
                raise ValueError(
                    f"pilot: {self.pilot} of the {len(self.seeds)} seeds leaves "
                    f"{len(self.seeds) - self.pilot} confirmatory seed(s); verdicts need at "
                    f"least 2: add seeds after the pilot's or lower pilot")
        p = self.primary_comparison
        if p is None:
            return
        if p.strategy not in self.strategies:
            raise ValueError(f"primary.strategy: {p.strategy!r} is not one of strategies "
                             f"{self.strategies}")
        if p.ratio not in self.ratios:
            raise ValueError(f"primary.ratio: {p.ratio!r} is not one of ratios {self.ratios}")
        if len(self.confirmatory_seeds) < 2:
            raise ValueError(
                f"seeds: the primary comparison needs at least 2 (confirmatory) seeds, each one "
                f"replicate, to be tested; got {self.confirmatory_seeds}: add seeds, or set "
                f"primary: null for a smoke run")


def _parse_primary(value: dict[str, Any]) -> PrimaryConfig:
    try:
        return PrimaryConfig(**value)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        what = "unknown key" if err["type"] == "unexpected_keyword_argument" else err["msg"]
        missing = sorted({"strategy", "ratio", "test_set"} - set(value))
        if missing:
            raise ValueError(f"missing {', '.join(missing)} (expected a mapping of strategy, "
                             f"ratio and test_set), got {value!r}") from None
        raise ValueError(f"{where}: {what}, got {err.get('input')!r}") from None


@dataclass(config=STRICT, frozen=True)
class DataConfig:
    """Which dataset is the source, how it is split, and how scarce its real training data is."""

    source: str
    # Scarcity: keep at most this many real training images per class (null: all of them) ...
    real_per_class: int | None = None
    # ... or this fraction of each class (null: all). At most one of the two may be set.
    real_fraction: float | None = None
    # Validation images kept per class (null: all). Early stopping reads the whole validation split
    # every epoch, so on a big official split (FER2013's 3,589 PublicTest images) this bounds its cost.
    val_per_class: int | None = None
    val_fraction: float = 0.15
    test_fraction: float = 0.25
    seed: int = 0

    def __post_init__(self) -> None:
        check_name("source", self.source)
        if self.real_per_class is not None and self.real_fraction is not None:
            raise ValueError("real_per_class and real_fraction: set at most one of them")
        for key in ("real_per_class", "val_per_class"):
            v = getattr(self, key)
            if v is not None and v < 1:
                raise ValueError(f"{key}: must be >= 1 or null, got {v}")
        if self.real_fraction is not None and not 0 < self.real_fraction <= 1:
            raise ValueError(f"real_fraction: must be in (0, 1], got {self.real_fraction}")
        for key in ("val_fraction", "test_fraction"):
            v = getattr(self, key)
            if not 0 < v < 1:
                raise ValueError(f"{key}: must be in (0, 1), got {v}")
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("val_fraction + test_fraction must be < 1")


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
        _positive(width=self.width, epochs=self.epochs, batch_size=self.batch_size,
                  patience=self.patience, checkpoint_every=self.checkpoint_every)
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
class ScorerConfig(TrainConfig):
    """The real-data classifier that scores synthetic images (section ``scorer``)."""

    # Temperature scaling on the validation split after training (Guo et al. 2017): the
    # confidence that ranks and thresholds synthetic images is then a calibrated probability.
    calibrate: bool = True
    seed: int = 0


AUGMENT_OPS = ("color", "translation", "cutout")


@dataclass(config=STRICT, frozen=True)
class GanConfig:
    """The GAN and how it is trained (section ``gan``). Every family reads the common keys; the
    family's docstring (``ganaug.gan.families``) gives its usual values and which of the
    family-specific keys it reads.

    Usual values: ``wgan_gp``: ``lr_g = lr_d = 1e-4``, ``beta1 = 0.0``, ``beta2 = 0.9``,
    ``n_critic = 5``, ``gp_weight = 10``. ``dcgan``: ``2e-4``, ``0.5``, ``0.999``, ``1``.
    ``sngan``: ``2e-4``, ``0.0``, ``0.9``, ``n_critic = 2``, with ``diffaugment`` for scarce data.
    ``stargan``: ``1e-4``, ``0.5``, ``0.999``, ``n_critic = 5``, ``gp_weight = 10``,
    ``lambda_cls = 1``, ``lambda_rec = 10``.
    """

    # A family registered in ganaug.gan.FAMILIES: dcgan, wgan_gp, sngan, stargan.
    arch: str = "dcgan"
    z_dim: int = 64
    width: int = 64
    # Generator updates. With per_class, each class's pair gets this many (K x the compute).
    steps: int = 3000
    # Real images per discriminator update (per class with per_class).
    batch_size: int = 64
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    # Adam's betas, for both networks.
    beta1: float = 0.5
    beta2: float = 0.999
    # Discriminator (critic) updates per generator update.
    n_critic: int = 1
    # Weight of the gradient penalty in the critic loss; read by the families that use one
    # (wgan_gp, stargan).
    gp_weight: float = 10.0
    # Decay of the exponential moving average of the generator's weights (ramped up over the first
    # steps: see ganaug.gan.train.ema_update); the average is the generator saved for `generate`
    # (the raw one is kept beside it). 0 or null: off.
    ema_decay: float | None = 0.999
    # One independent generator/discriminator pair per class, each trained only on its class's
    # images (the published per-class DCGAN setup), instead of one conditional GAN. Noise-to-image
    # families only.
    per_class: bool = False
    # The first warmup_steps of `steps` train the generator by feature matching (Salimans et al.
    # 2016: match the per-class mean of the discriminator's penultimate features on real and
    # generated images) instead of the adversarial loss; the discriminator trains as usual. 0: off.
    # Noise-to-image families only.
    warmup_steps: int = 0
    # Data-efficient training, for every family. DiffAugment (Zhao et al. 2020): these
    # differentiable augmentations are applied to real and generated images before every
    # discriminator call, in the discriminator's and the generator's steps. []: off.
    diffaugment: list[Literal["color", "translation", "cutout"]] = field(default_factory=list)
    # Probability that an image is augmented (each op independently). With ada_target set, this
    # is only the starting value: ADA-style (Karras et al. 2020) it is raised while the
    # discriminator's sign(D(real)) averages above ada_target (overfitting) and lowered below it,
    # every ada_interval steps, by batch_size x ada_interval / (ada_kimg x 1000). Only for
    # families whose discriminator output has a fixed sign (GanFamily.sign_calibrated; the
    # family's check_params refuses the rest).
    augment_p: float = 1.0
    ada_target: float | None = None
    ada_interval: int = 4
    ada_kimg: float = 20.0
    # LeCam regularisation (Tseng et al. 2021): lecam_weight x (||D(x) - mu_fake||^2 +
    # ||D(G(z)) - mu_real||^2), with mu_* moving averages (decay lecam_decay) of the
    # discriminator's outputs. 0: off.
    lecam_weight: float = 0.0
    lecam_decay: float = 0.99
    # Image-to-image families (stargan): weights of the domain-classification and the cycle
    # reconstruction losses, and the generator's residual blocks.
    lambda_cls: float = 1.0
    lambda_rec: float = 10.0
    res_blocks: int = 3
    checkpoint_every: int = 500
    log_every: int = 50
    seed: int = 0
    # Device habits. channels_last memory format on CUDA and the CPU (faster on both; not MPS).
    # amp: bf16 autocast of the forward passes on CUDA devices that support it (never on the CPU
    # or MPS); off by default: bf16 has not yet been checked against fp32 for the GANs' quality
    # (the gradient penalty and the discriminator's scores are sensitive to precision).
    channels_last: bool = True
    amp: bool = False

    def __post_init__(self) -> None:
        # Whether `arch` is a registered family and takes these knobs: ganaug.validate.
        check_name("arch", self.arch)
        _positive(z_dim=self.z_dim, width=self.width, steps=self.steps, batch_size=self.batch_size,
                  n_critic=self.n_critic, checkpoint_every=self.checkpoint_every,
                  log_every=self.log_every, ada_interval=self.ada_interval,
                  res_blocks=self.res_blocks)
        for key in ("lr_g", "lr_d", "ada_kimg"):
            v = getattr(self, key)
            if not v > 0:
                raise ValueError(f"{key}: must be a finite number > 0, got {v}")
        for key in ("beta1", "beta2", "lecam_decay"):
            v = getattr(self, key)
            if not 0 <= v < 1:
                raise ValueError(f"{key}: must be in [0, 1), got {v}")
        for key in ("gp_weight", "lecam_weight", "lambda_cls", "lambda_rec"):
            v = getattr(self, key)
            if not v >= 0:
                raise ValueError(f"{key}: must be a finite number >= 0, got {v}")
        if self.ema_decay is not None and not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay: must be in [0, 1) (0 or null: no EMA), got {self.ema_decay}")
        if not 0 <= self.warmup_steps < self.steps:
            raise ValueError(
                f"warmup_steps: must be in [0, steps) = [0, {self.steps}), got {self.warmup_steps} "
                f"(the warm-up is the first part of the `steps` budget)"
            )
        _no_duplicates("diffaugment", self.diffaugment)
        if not 0 <= self.augment_p <= 1:
            raise ValueError(f"augment_p: must be in [0, 1], got {self.augment_p}")
        if self.ada_target is not None and not 0 < self.ada_target < 1:
            raise ValueError(f"ada_target: must be in (0, 1) or null (off), got {self.ada_target}")
        if self.ada_target is not None and not self.diffaugment:
            raise ValueError("ada_target: adapts the strength of the augmentations in "
                             "`diffaugment`, which lists none; list some (e.g. [color, "
                             "translation, cutout]) or set ada_target to null")
        if self.seed < 0:
            raise ValueError(f"seed: must be >= 0, got {self.seed}")


@dataclass(config=STRICT, frozen=True)
class GenerateConfig:
    # The pool holds pool_multiplier x max_ratio x (largest real class count) images per class, so
    # every ratio up to max_ratio can choose K = ratio x real count from several times as many.
    pool_multiplier: float = 4.0
    max_ratio: float = 5.0
    # A held-out synthetic test set of this many images per class (0: none), generated with other
    # noise than the pool: for train-on-real/test-on-synthetic and the mixed test set.
    test_per_class: int = 0
    batch_size: int = 512
    seed: int = 0

    def __post_init__(self) -> None:
        if self.test_per_class < 0:
            raise ValueError(f"test_per_class: must be >= 0, got {self.test_per_class}")
        if self.pool_multiplier < 1:
            raise ValueError(f"pool_multiplier: must be >= 1, got {self.pool_multiplier}")
        if self.max_ratio <= 0:
            raise ValueError(f"max_ratio: must be > 0, got {self.max_ratio}")
        _positive(batch_size=self.batch_size)


@dataclass(config=STRICT, frozen=True)
class ScoreConfig:
    # Feature spaces for FID/KID: "scorer" (the real-data classifier's penultimate layer, offline;
    # always computed, it also scores selections) and "inception" (the standard FID Inception
    # network; needs fetch.inception so that fetch@inception provides its weights).
    features: list[Literal["scorer", "inception"]] = field(default_factory=lambda: ["scorer"])
    # Pool images per class that FID/KID compare (null: all); Inception on a CPU is ~0.3 s/image.
    fid_per_class: int | None = None
    batch_size: int = 512
    kid_subset_size: int = 100
    kid_subsets: int = 50
    # Images per class in the best/worst-scored sample grids (and closest-to-training pairs).
    grid_per_class: int = 8
    # Neighbours of the precision/recall/density/coverage manifolds (a class needs more real
    # images than this, or its figures are null), and the synthetic images per class they use
    # (a seeded subset: the synthetic k-NN radii need all pairwise distances, O(n^2) memory).
    prdc_k: int = 5
    prdc_per_class: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        if "scorer" not in self.features or len(set(self.features)) != len(self.features):
            raise ValueError(f"features: list scorer (always computed) and each space once, "
                             f"got {self.features}")
        if self.fid_per_class is not None and self.fid_per_class < 2:
            raise ValueError(f"fid_per_class: must be >= 2 or null, got {self.fid_per_class}")
        if self.kid_subset_size < 2:  # the unbiased MMD estimate needs two samples per set
            raise ValueError(f"kid_subset_size: must be >= 2, got {self.kid_subset_size}")
        _positive(batch_size=self.batch_size, kid_subset_size=self.kid_subset_size,
                  kid_subsets=self.kid_subsets, grid_per_class=self.grid_per_class,
                  prdc_k=self.prdc_k, prdc_per_class=self.prdc_per_class)


REFINE_BASE = "base"


@dataclass(config=STRICT, frozen=True)
class RefineConfig:
    """Iterative refinement (section ``refine``): each round fine-tunes the GAN it starts from on
    the real images plus the images selected from that GAN, then generates, scores and selects
    again."""

    # Round name -> the round it starts from; "base" is the main pipeline (models/gan.pt and its
    # pool's selection by `strategy` at `ratio`). {} = no refinement.
    rounds: dict[str, str] = field(default_factory=dict)
    # How every round selects (its knobs: select.<strategy>).
    strategy: str = "threshold"
    ratio: float = 1.0
    # GAN fine-tuning steps per round (the gan section gives everything else).
    steps: int = 500

    def __post_init__(self) -> None:
        # Whether `strategy` can drive refinement (a score-based one): ganaug.validate.
        check_name("strategy", self.strategy)
        if not math.isfinite(self.ratio) or self.ratio <= 0:
            raise ValueError(f"ratio: must be a positive number, got {self.ratio}")
        _positive(steps=self.steps)
        for name, start in self.rounds.items():
            check_name("rounds", name)
            if name == REFINE_BASE:
                raise ValueError(f"rounds: {REFINE_BASE!r} is the main pipeline, not a round name")
            if start != REFINE_BASE and start not in self.rounds:
                raise ValueError(f"rounds: {name!r} starts from {start!r}, which is neither "
                                 f"{REFINE_BASE!r} nor a round")
        for name in self.rounds:  # every chain must end at base
            seen, node = {name}, self.rounds[name]
            while node != REFINE_BASE:
                if node in seen:
                    raise ValueError(f"rounds: {name!r} is part of a cycle")
                seen.add(node)
                node = self.rounds[node]

    def depth(self, name: str) -> int:
        """1 for a round that starts from base, 2 for one that starts from such a round, ..."""
        return 1 if self.rounds[name] == REFINE_BASE else 1 + self.depth(self.rounds[name])


@dataclass(config=STRICT, frozen=True)
class ReportConfig:
    # Confidence level of the intervals over seeds.
    confidence_level: float = 0.95
    # delta: the smallest gain in accuracy points (1.0 = one percentage point) that matters;
    # within +-delta a mix is "equivalent" to the baseline (see README.md, "Verdicts").
    equivalence_margin: float = 1.0
    # Power the replicate planner aims for.
    power: float = 0.8

    def __post_init__(self) -> None:
        if not 0 < self.confidence_level < 1:
            raise ValueError(f"confidence_level: must be in (0, 1), got {self.confidence_level}")
        if not (math.isfinite(self.equivalence_margin) and self.equivalence_margin > 0):
            raise ValueError(f"equivalence_margin: must be a positive, finite number of accuracy "
                             f"points, got {self.equivalence_margin}")
        if not 0 < self.power < 1:
            raise ValueError(f"power: must be in (0, 1), got {self.power}")


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Read a params file; a missing or malformed file is a :class:`ParamsError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: params file not found")
    try:
        with path.open() as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level")
    return data


def get_key(params: Mapping[str, Any], dotted: str, where: str = "params.yaml") -> Any:
    """``get_key(p, "select.threshold")`` -> ``p["select"]["threshold"]``, with a clear error."""
    node: Any = params
    for i, part in enumerate(dotted.split(".")):
        if not isinstance(node, Mapping) or part not in node:
            missing = ".".join(dotted.split(".")[: i + 1])
            raise ParamsError(f"{where}: missing key {missing!r}")
        node = node[part]
    return node


def parse(cls: type[T], value: Any, key: str, where: str = "params.yaml") -> T:
    """Validate ``value`` (the section at ``key``) into ``cls``; errors name ``where: key.field``."""
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise ParamsError(f"{where}: {key}: expected a mapping, got {type(value).__name__}")
    for path, bad in _non_finite(value, key):
        raise ParamsError(f"{where}: {path}: must be a finite number, got {bad}")
    try:
        return cls(**value)
    except ValidationError as exc:
        raise ParamsError(_format_validation(exc, key, where)) from None
    except (ValueError, TypeError) as exc:
        raise ParamsError(f"{where}: {key}: {exc}") from None


def read_params(declared: Iterable[str], path: str | Path = "params.yaml") -> dict[str, Any]:
    """Return only the declared (dotted) keys of the params file, nested as in the file.

    A stage that reads a key it did not declare gets a KeyError, so ``dvc.yaml`` and the code
    cannot drift apart silently.
    """
    params = load_params(path)
    out: dict[str, Any] = {}
    for dotted in declared:
        value = get_key(params, dotted, str(path))
        node = out
        parts = dotted.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def _format_validation(exc: ValidationError, key: str, where: str) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in (key, *err["loc"]))
        msg = err["msg"]
        if err["type"] == "unexpected_keyword_argument":
            msg = "unknown key"
        elif err["type"] == "value_error":  # raised by a __post_init__ check; says what it wants
            msg = str(err.get("ctx", {}).get("error", msg))
        elif "input" in err:
            msg = f"{msg}, got {err['input']!r}"
        lines.append(f"{where}: {loc}: {msg}")
    return "\n".join(lines)


def _non_finite(value: Any, path: str) -> Iterable[tuple[str, float]]:
    """``(dotted path, value)`` of every NaN or infinite float inside ``value``: YAML's ``.nan``
    and ``.inf`` pass comparisons such as ``lr <= 0`` unnoticed (NaN compares false)."""
    if isinstance(value, float) and not math.isfinite(value):
        yield path, value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _non_finite(v, f"{path}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from _non_finite(v, f"{path}.{i}")


def _no_duplicates(key: str, values: list) -> None:
    seen = set()
    for v in values:
        if v in seen:
            raise ValueError(f"{key}: duplicate value {v!r}")
        seen.add(v)


def _positive(**values: int) -> None:
    for name, v in values.items():
        if v < 1:
            raise ValueError(f"{name}: must be >= 1, got {v}")
