"""The ``gan`` section's shared knobs: the GAN family and the training loop every family shares.

A family's own knobs (a noise dimension, a loss weight, residual blocks) are not here: each family
declares its config dataclass beside its code (``GanFamily.config``), read from the section
``gan.<arch>`` (``gan.stargan.lambda_rec``); :func:`ganaug.gan.gan_config` parses both.
"""

from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import Any, Literal

from pydantic.dataclasses import dataclass

from ganaug.params import (
    STRICT,
    check_name,
    no_duplicates,
    positive,
)

AUGMENT_OPS = ("color", "translation", "cutout")


@dataclass(config=STRICT, frozen=True)
class GanConfig:
    """The GAN and how it is trained (section ``gan``): what the shared loop
    (``ganaug.gan.train``) reads, for every family. The chosen family's own knobs are ``knobs``
    (the section ``gan.<arch>``); each family's module docstring gives its usual values.

    Usual values: ``wgan_gp``: ``lr_g = lr_d = 1e-4``, ``beta1 = 0.0``, ``beta2 = 0.9``,
    ``n_critic = 5``. ``dcgan``: ``2e-4``, ``0.5``, ``0.999``, ``1``. ``sngan``: ``2e-4``,
    ``0.0``, ``0.9``, ``n_critic = 5``, with ``diffaugment`` for scarce data. ``stargan``:
    ``1e-4``, ``0.5``, ``0.999``, ``n_critic = 5``.
    """

    # A family registered in ganaug.gan.FAMILIES: dcgan, wgan_gp, sngan, stargan, or a plugin's.
    arch: str = "dcgan"
    # The networks' base channel count (how each family scales it: its module docstring).
    width: int = 64
    # Generator updates. With gan.<arch>.per_class, each class's pair gets this many.
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
    # Decay of the exponential moving average of the generator's weights (ramped up over the first
    # steps: see ganaug.gan.train.ema_update); the average is the generator saved for `generate`
    # (the raw one is kept beside it). 0 or null: off.
    ema_decay: float | None = 0.999
    # The first warmup_steps of `steps` train the generator by feature matching (Salimans et al.
    # 2016: match the per-class mean of the discriminator's penultimate features on real and
    # generated images) instead of the adversarial loss; the discriminator trains as usual. 0: off.
    # Noise-to-image families only (the loop schedules it; a family without it refuses it).
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
    checkpoint_every: int = 500
    log_every: int = 50
    seed: int = 0
    # Device habits. channels_last memory format on CUDA and the CPU (faster on both; not MPS).
    # amp: bf16 autocast of the forward passes on CUDA devices that support it (never on the CPU
    # or MPS); off by default: bf16 has not yet been checked against fp32 for the GANs' quality
    # (the gradient penalty and the discriminator's scores are sensitive to precision).
    channels_last: bool = True
    amp: bool = False
    # The chosen family's own knobs: the section gan.<arch> parsed into that family's config
    # dataclass (GanFamily.config) by ganaug.gan.gan_config; None: that dataclass's defaults
    # (ganaug.gan.family_for fills them in). Not a params key.
    knobs: Any = None

    def __post_init__(self) -> None:
        # Whether `arch` is a registered family and takes these knobs: ganaug.validate.
        check_name("arch", self.arch)
        positive(width=self.width, steps=self.steps, batch_size=self.batch_size,
                  n_critic=self.n_critic, checkpoint_every=self.checkpoint_every,
                  log_every=self.log_every, ada_interval=self.ada_interval)
        for key in ("lr_g", "lr_d", "ada_kimg"):
            v = getattr(self, key)
            if not v > 0:
                raise ValueError(f"{key}: must be a finite number > 0, got {v}")
        for key in ("beta1", "beta2", "lecam_decay"):
            v = getattr(self, key)
            if not 0 <= v < 1:
                raise ValueError(f"{key}: must be in [0, 1), got {v}")
        if not self.lecam_weight >= 0:
            raise ValueError(f"lecam_weight: must be a finite number >= 0, got {self.lecam_weight}")
        if self.ema_decay is not None and not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay: must be in [0, 1) (0 or null: no EMA), got {self.ema_decay}")
        if not 0 <= self.warmup_steps < self.steps:
            raise ValueError(
                f"warmup_steps: must be in [0, steps) = [0, {self.steps}), got {self.warmup_steps} "
                f"(the warm-up is the first part of the `steps` budget)"
            )
        no_duplicates("diffaugment", self.diffaugment)
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

    def section(self) -> dict[str, Any]:
        """The params form, as ``params.yaml`` writes it: the shared keys and ``{arch: knobs}``
        (what a GAN checkpoint records, and what :func:`ganaug.gan.gan_config` reads back)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "knobs"}
        out["diffaugment"] = list(self.diffaugment)
        knobs = {} if self.knobs is None else dataclasses.asdict(self.knobs)
        return {**out, self.arch: knobs}


# The shared keys of the gan section (what is not a family's section).
SHARED_KEYS = tuple(f.name for f in dataclasses.fields(GanConfig) if f.name != "knobs")
