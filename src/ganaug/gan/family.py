"""The one extension point for GAN families, and GAN checkpoints.

A family is a subclass of :class:`GanFamily` registered in :data:`FAMILIES` under the name that
``gan.arch`` picks. It says everything the pipeline needs and nothing the stages assume:

- how its networks are built (:meth:`GanFamily.build`: generator and discriminator),
- one training step, as the discriminator's and the generator's losses for a real batch
  (:meth:`d_loss`, :meth:`g_loss`); the shared loop (:mod:`ganaug.gan.train`) does the rest:
  optimisers, ``n_critic``, EMA, DiffAugment/ADA/LeCam, checkpoints and resuming, NaN checks,
- how it produces images for given intended labels (:meth:`sampler`): from noise, or by
  translating source images of other classes (``translates = True``),
- which scores its discriminator offers for an image and its intended label
  (:meth:`disc_scores`; ``realism`` always, more where the discriminator has more heads),
- whether its discriminator's raw output is sign-calibrated (:attr:`sign_calibrated`), which
  ADA's overfitting heuristic needs; every family must say,
- its own knobs (:attr:`config`: a strict dataclass, read from the section ``gan.<name>`` by
  :func:`ganaug.gan.knobs.gan_config`; :attr:`knobs` holds the parsed values), beside the shared
  ones of :class:`~ganaug.configs.gan.GanConfig` that the training loop reads.

Adding a family takes one module (networks, config + the subclass, registered with
``@FAMILIES.register("name")``) imported in ``ganaug/gan/__init__.py`` and a line in the README;
or, from another package, the same module named by an entry point of the group
``ganaug.gan_families`` (README "Extending"). The registry-wide tests in
``tests/test_gan_families.py`` cover a built-in family without edits.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic.dataclasses import dataclass as strict_dataclass
from torch import nn

from ganaug.configs.gan import SHARED_KEYS, GanConfig
from ganaug.errors import ParamsError
from ganaug.inference import to_model_range
from ganaug.params import STRICT, check_name
from ganaug.registry import Registry

log = logging.getLogger(__name__)


@dataclass
class RealBatch:
    """A batch of real training images on the training device.

    ``x``: float ``(B, C, H, W)`` in [-1, 1]; ``y``: int64 ``(B,)`` labels.
    """

    x: torch.Tensor
    y: torch.Tensor


class Nets(nn.Module):
    """The trained networks of one GAN: ``generator`` and ``discriminator`` (plus any helper
    module a family keeps), as one module so checkpoints and devices handle them together."""

    def __init__(self, generator: nn.Module, discriminator: nn.Module) -> None:
        super().__init__()
        self.generator = generator
        self.discriminator = discriminator


class Sampler(ABC):
    """Produces images for intended labels with one generator, for ``generate`` and the grids.

    :meth:`plan` fixes, for a whole pool, what each row is made from (nothing for noise: the
    noise is drawn batch by batch; the source image for a translation); :meth:`produce` makes a
    batch. Provenance arrays (``source_index``, ``source_label``: -1 when there is no source)
    go into the pool next to the intended labels.
    """

    def plan(self, labels: np.ndarray, seed: int) -> np.ndarray:
        """Per row of ``labels``, the source index into the real training images (-1: none)."""
        return np.full(len(labels), -1, np.int64)

    def capacity(self, num_classes: int) -> int | None:
        """The most distinct images it can make per class (None: unlimited)."""
        return None

    @abstractmethod
    def produce(self, labels: torch.Tensor, plan: np.ndarray, g: torch.Generator) -> torch.Tensor:
        """Images ``(B, C, H, W)`` in [-1, 1] for labels ``(B,)`` on the generator's device."""

    def source_labels(self, plan: np.ndarray) -> np.ndarray:
        return np.full(len(plan), -1, np.int64)


@strict_dataclass(config=STRICT, frozen=True)
class NoKnobs:
    """The config of a family without knobs of its own (its section ``gan.<name>`` stays empty)."""


class GanFamily(ABC):
    """How one GAN family is built, trained, sampled and scored (see the module docstring).

    ``cfg`` is the ``gan`` params section (the shared knobs, and the family's own in
    ``cfg.knobs``, also :attr:`knobs`); ``image_shape`` is ``(C, H, W)``.
    """

    name: ClassVar[str] = ""
    # Image-to-image: images are made from real source images of other classes.
    translates: ClassVar[bool] = False
    # The columns :meth:`disc_scores` returns, in order ("realism" first).
    score_names: ClassVar[tuple[str, ...]] = ("realism",)
    # Whether the discriminator's raw output has a fixed zero: > 0 means "real", < 0 "fake"
    # (BCE logits, hinge). ADA's overfitting heuristic r_t = E[sign(D(real))] (Karras et al.
    # 2020) means something only then: a WGAN critic's output is defined up to a constant
    # (its loss is a difference of means), so its sign drifts with that constant and ADA's p
    # would move on noise. No default: a new family must say (None is refused with ADA on).
    sign_calibrated: ClassVar[bool | None] = None
    # The family's own knobs: a strict frozen dataclass (pydantic's, with ganaug.params.STRICT),
    # read from gan.<name>; every field needs a default.
    config: ClassVar[type] = NoKnobs

    def __init__(self, cfg: GanConfig, num_classes: int, image_shape: tuple[int, int, int]) -> None:
        if cfg.knobs is None:
            cfg = dataclasses.replace(cfg, knobs=self.config())
        elif not isinstance(cfg.knobs, self.config):
            raise ValueError(f"{self.name}: knobs of type {type(cfg.knobs).__name__}, expected "
                             f"{self.config.__name__} (parse the section with gan_config)")
        self.cfg, self.num_classes = cfg, int(num_classes)
        self.image_shape = tuple(int(v) for v in image_shape)
        self.check()

    @property
    def knobs(self) -> Any:
        """The family's own knobs (an instance of :attr:`config`), from ``gan.<name>``."""
        return self.cfg.knobs

    @classmethod
    def check_config(cls, cfg: GanConfig) -> None:
        """Raise ValueError(``"<key>: ..."``, the key relative to ``gan``: ``warmup_steps``,
        ``stargan.res_blocks``) for knobs this family cannot take together (no data needed:
        ``ganaug.validate`` calls :meth:`check_params`, which calls it, before any stage runs).
        ``cfg.knobs`` may be None (the defaults). Every knob is fine by default."""
        return None

    @classmethod
    def check_params(cls, cfg: GanConfig) -> None:
        """The knobs every family is checked on (ADA needs a sign-calibrated discriminator),
        then the family's own :meth:`check_config`. Raises ValueError(``"<key>: ..."``)."""
        if cfg.ada_target is not None and cls.sign_calibrated is not True:
            why = ("does not declare whether ADA's sign(D(real)) heuristic measures "
                   "overfitting on it (GanFamily.sign_calibrated)"
                   if cls.sign_calibrated is None else
                   "is a critic whose output has no fixed sign, so ADA's sign(D(real)) "
                   "heuristic would move p on noise")
            raise ValueError(f"ada_target: {cls.name or cls.__name__}'s discriminator {why}; set "
                             f"ada_target to null (a fixed augment_p still applies) or use a "
                             f"family with a sign-calibrated discriminator "
                             f"({', '.join(n for n in FAMILIES if FAMILIES.get(n).sign_calibrated)})")
        cls.check_config(cfg)

    def check(self) -> None:
        """:meth:`check_params`, then what the data must satisfy (its image size, its classes)."""
        self.check_params(self.cfg)
        c, h, w = self.image_shape
        if h != w:
            raise ValueError(f"arch: {self.name} needs square images, got {h}x{w}")
        if self.num_classes < 1:
            raise ValueError("the dataset has no classes")

    # -- building -------------------------------------------------------------------------
    @abstractmethod
    def build(self) -> Nets:
        """Freshly initialised networks (weights drawn from torch's global generator)."""

    # -- one training step ----------------------------------------------------------------
    @abstractmethod
    def d_loss(self, nets: Nets, real: RealBatch, ctx: Any) -> tuple[torch.Tensor, dict]:
        """The discriminator's loss for one update and what to log (``d_real``, ``d_fake``, ...).

        Every batch the discriminator sees goes through ``ctx.augment(images)`` first
        (DiffAugment/ADA; the identity when both are off), or the call goes through
        ``ctx.disc(discriminator, images, *args)``, which augments and calls; the loss includes
        ``ctx.regularize(d_real, d_fake)`` (LeCam). A test checks every registered family."""

    @abstractmethod
    def g_loss(self, nets: Nets, real: RealBatch, ctx: Any, warmup: bool
               ) -> tuple[torch.Tensor, dict]:
        """The generator's loss for one update (``warmup``: the feature-matching warm-up)."""

    # -- producing images -------------------------------------------------------------------
    @abstractmethod
    def sampler(self, generator: nn.Module, real_x: np.ndarray, real_y: np.ndarray,
                device: torch.device) -> Sampler:
        """A :class:`Sampler` over ``generator``; ``real_x`` uint8 ``(N, C, H, W)`` and
        ``real_y`` are the real training images (the sources of a translation family)."""

    # -- scoring -----------------------------------------------------------------------------
    @abstractmethod
    def disc_scores(self, discriminator: nn.Module, x: torch.Tensor, y: torch.Tensor
                    ) -> dict[str, torch.Tensor]:
        """Scores ``(B,)`` of images ``x`` in [-1, 1] for intended labels ``y``, one per name
        in :attr:`score_names`; ``realism``: higher = more real to the discriminator."""


def check_family(name: str, cls: Any) -> type[GanFamily]:
    """What a registered family must be (built-in or plugin): a concrete :class:`GanFamily`
    subclass that declares its config, its scores and whether its discriminator is
    sign-calibrated, under a name that can be a params key beside the shared ones. Raises
    ValueError saying what is missing."""
    check_name("the family name", name)
    if name in SHARED_KEYS:
        raise ValueError(f"the name {name!r} is a shared key of the gan section; choose another")
    if not (isinstance(cls, type) and issubclass(cls, GanFamily)):
        raise ValueError(f"is {cls!r}, not a subclass of ganaug.gan.GanFamily")
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        raise ValueError(f"{cls.__qualname__} lacks the method(s) {missing} (GanFamily)")
    if cls.name not in ("", name):
        raise ValueError(f"{cls.__qualname__}.name is {cls.name!r}, registered as {name!r}")
    if not isinstance(cls.sign_calibrated, bool):
        raise ValueError(f"{cls.__qualname__}.sign_calibrated must be True or False (whether the "
                         f"discriminator's raw output has a fixed sign), got "
                         f"{cls.sign_calibrated!r}")
    if not (isinstance(cls.config, type) and dataclasses.is_dataclass(cls.config)):
        raise ValueError(f"{cls.__qualname__}.config must be a dataclass (its knobs), got "
                         f"{cls.config!r}")
    names = cls.score_names
    if not (isinstance(names, tuple) and names and names[0] == "realism"
            and all(isinstance(n, str) for n in names)):
        raise ValueError(f"{cls.__qualname__}.score_names must be a tuple of names starting with "
                         f"'realism', got {names!r}")
    if not cls.name:
        cls.name = name
    return cls


FAMILIES: Registry[type[GanFamily]] = Registry("GAN family", group="ganaug.gan_families",
                                               builtins="ganaug.gan", check=check_family)


def family_for(cfg: GanConfig, num_classes: int, image_shape: tuple[int, int, int]) -> GanFamily:
    """The family ``cfg.arch`` names, checked against ``cfg`` and the data's shape; what it cannot
    take is a :class:`ParamsError` naming the ``gan`` key."""
    cls = FAMILIES.get(cfg.arch)
    try:
        return cls(cfg, num_classes, image_shape)
    except ParamsError:
        raise
    except ValueError as exc:
        raise ParamsError(f"params.yaml: gan.{exc}") from None


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------


def gan_payload(family: GanFamily, nets: Nets, ema_generator: nn.Module | None,
                meta: dict | None = None) -> dict[str, Any]:
    """The ``kind: gan`` checkpoint :func:`ganaug.gan.saved.load_gan` reads: the family's name and params, the
    data's shape, and the weights. ``generator`` is what ``generate`` uses (the EMA one when
    training kept an average; the raw one is kept under ``generator_raw``)."""
    def cpu(m: nn.Module) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in m.state_dict().items()}

    return {
        "kind": "gan", "arch": family.name, "config": family.cfg.section(),
        "num_classes": family.num_classes, "image_shape": list(family.image_shape),
        "generator_kind": "raw" if ema_generator is None else "ema",
        "generator": cpu(nets.generator if ema_generator is None else ema_generator),
        "generator_raw": None if ema_generator is None else cpu(nets.generator),
        "discriminator": cpu(nets.discriminator),
        "meta": dict(meta or {}),
    }


@dataclass
class LoadedGan:
    """A GAN rebuilt from its checkpoint, in eval mode on the asked device."""

    family: GanFamily
    generator: nn.Module
    discriminator: nn.Module
    payload: dict[str, Any]

    def sampler(self, real_x: np.ndarray, real_y: np.ndarray, device: torch.device) -> Sampler:
        return self.family.sampler(self.generator, real_x, real_y, device)


# --------------------------------------------------------------------------------------------
# Shared sampler implementations
# --------------------------------------------------------------------------------------------


class NoiseSampler(Sampler):
    """``G(z, y)`` with ``z ~ N(0, I)`` of ``z_dim``, drawn from ``g`` batch by batch."""

    def __init__(self, generator: nn.Module, z_dim: int, device: torch.device) -> None:
        self.generator, self.z_dim, self.device = generator, z_dim, device

    @torch.no_grad()
    def produce(self, labels: torch.Tensor, plan: np.ndarray, g: torch.Generator) -> torch.Tensor:
        z = torch.randn(len(labels), self.z_dim, generator=g, device=g.device)  # (B, z_dim)
        return self.generator(z.to(self.device), labels.to(self.device))


class TranslationSampler(Sampler):
    """``G(x_source, y)``: each image translates a real training image of another class into its
    intended class. :meth:`plan` assigns sources so that, per class, every source is used once
    before any is used twice (a seeded order), since the same (source, label) pair always gives
    the same image."""

    def __init__(self, generator: nn.Module, real_x: np.ndarray, real_y: np.ndarray,
                 device: torch.device) -> None:
        self.generator, self.device = generator, device
        self.real_x = torch.from_numpy(np.ascontiguousarray(real_x)).to(device)  # uint8
        self.real_y = np.asarray(real_y, np.int64)

    def capacity(self, num_classes: int) -> int | None:
        counts = np.bincount(self.real_y, minlength=num_classes)
        return int((counts.sum() - counts).min())

    def plan(self, labels: np.ndarray, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        out = np.empty(len(labels), np.int64)
        for c in np.unique(labels):
            rows = np.flatnonzero(labels == c)
            others = rng.permutation(np.flatnonzero(self.real_y != c))
            if len(others) == 0:
                raise ValueError(f"class {c}: no real image of another class to translate")
            out[rows] = others[np.arange(len(rows)) % len(others)]
        return out

    def source_labels(self, plan: np.ndarray) -> np.ndarray:
        return np.where(plan >= 0, self.real_y[np.maximum(plan, 0)], -1)

    @torch.no_grad()
    def produce(self, labels: torch.Tensor, plan: np.ndarray, g: torch.Generator) -> torch.Tensor:
        src = to_model_range(self.real_x[torch.from_numpy(plan).to(self.device)])  # (B, C, H, W)
        return self.generator(src, labels.to(self.device))


ScoreFn = Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]
