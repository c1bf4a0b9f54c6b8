"""Adversarial training of a conditional GAN, or of one GAN per class, resumable from periodic
checkpoints; with an optional EMA of the generator and an optional feature-matching warm-up.

A training step works on a list of *pairs* (generator, discriminator, the real images they learn
from): one pair holding all classes for a conditional GAN, one pair per class with
``gan.per_class``. Pairs share no weights, so summing their losses before one backward pass and
one Adam step trains each exactly as if it were trained alone (Adam is element-wise); every pair
gets ``gan.steps`` generator updates with batches of ``gan.batch_size`` of its own images.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ganaug.config import GanConfig
from ganaug.gan.losses import feature_matching_loss, gradient_penalty
from ganaug.gan.models import Discriminator
from ganaug.gan.registry import GANS, GanSpec, build_gan, gan_payload
from ganaug.models.checkpoint import CheckpointError, load_checkpoint, load_state, save_checkpoint
from ganaug.runtime import generator
from ganaug.tensors import to_model_range, to_uint8
from ganaug.training import fingerprint

log = logging.getLogger(__name__)


class GanDivergedError(FloatingPointError):
    """A GAN loss or weight became NaN or infinite."""


@dataclass
class GanResult:
    generator: nn.Module  # the one `generate` uses: the EMA generator when gan.ema_decay is set
    discriminator: nn.Module
    gen_kwargs: dict[str, Any]
    disc_kwargs: dict[str, Any]
    history: list[dict[str, float]]
    # Fixed-noise samples of `generator` at each checkpoint: uint8 (n_checkpoints, K, C, H, W).
    progress: list[torch.Tensor] = field(default_factory=list)
    # The trained weights themselves when `generator` is their moving average, else None.
    raw_generator: nn.Module | None = None
    per_class: bool = False

    @property
    def generator_kind(self) -> str:
        return "raw" if self.raw_generator is None else "ema"

    def payload(self, arch: str, meta: dict[str, Any]) -> dict[str, Any]:
        """The ``kind: gan`` checkpoint (see :func:`ganaug.gan.registry.gan_payload`)."""
        return gan_payload(arch, self.generator, self.discriminator, self.gen_kwargs,
                           self.disc_kwargs, per_class=self.per_class,
                           generator_kind=self.generator_kind, raw_generator=self.raw_generator,
                           meta=meta)


@dataclass
class _Pair:
    """A generator/discriminator pair and the real images it learns from."""

    gen: nn.Module        # (z (B, z_dim), y (B,)) -> (B, C, H, W) in [-1, 1]
    disc: Discriminator   # (x (B, C, H, W) in [-1, 1], y (B,)) -> (B,)
    x: torch.Tensor       # uint8 (N, C, H, W), on the device
    y: torch.Tensor       # (N,) labels the pair is conditioned on (all 0 for a per-class member)


def fixed_inputs(cfg: GanConfig, num_classes: int, per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed noise batch for sample grids: row c holds ``per_class`` samples of class c."""
    g = generator(cfg.seed + 1)
    z = torch.randn(num_classes * per_class, cfg.z_dim, generator=g)
    y = torch.arange(num_classes).repeat_interleave(per_class)
    return z, y


def train_gan(x_real: np.ndarray, y_real: np.ndarray, num_classes: int, cfg: GanConfig,
              device: torch.device, resume_path: str | Path | None = None,
              on_log: Any = None, init: dict[str, Any] | None = None) -> GanResult:
    """Train ``cfg.arch`` on uint8 images ``(N, C, H, W)`` with labels ``(N,)`` in [0, K).

    Real batches, noise and gradient-penalty interpolation come from one generator seeded by
    ``cfg.seed``; its state is saved with every checkpoint (with the weights, the EMA and the
    optimisers), so a run resumed after a kill ends with the same weights. ``on_log(step,
    record)`` is called every ``cfg.log_every`` steps (with the replayed history first on resume).
    A NaN or infinite loss stops training with :class:`GanDivergedError`; the resume checkpoint
    then still holds the last good state.

    ``init``: a ``kind: gan`` checkpoint payload to fine-tune from (iterative refinement) instead
    of a fresh initialisation; the optimisers start fresh.
    """
    spec = GANS.get(cfg.arch)()
    torch.manual_seed(cfg.seed)
    gen, disc, gen_kwargs, disc_kwargs = build_gan(cfg.arch, cfg.z_dim, cfg.width, num_classes,
                                                   tuple(x_real.shape[1:]), cfg.per_class)
    if init is not None:
        _load_init(init, gen, disc)
    gen, disc = gen.to(device), disc.to(device)
    ema = copy.deepcopy(gen).eval().requires_grad_(False) if cfg.ema_decay else None
    if ema is not None and init is not None:  # the average carries on from the checkpoint's
        load_state(ema, init["generator"], "init checkpoint", "generator")
    shown = gen if ema is None else ema  # what the grids show and `generate` will use
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    xt = torch.from_numpy(np.ascontiguousarray(x_real)).to(device)  # uint8 (N, C, H, W)
    yt = torch.from_numpy(np.asarray(y_real, dtype=np.int64)).to(device)
    pairs = _pairs(gen, disc, xt, yt, num_classes, cfg.per_class)
    g = generator(cfg.seed)
    fixed_z, fixed_y = fixed_inputs(cfg, num_classes, per_class=1)

    fp = fingerprint(asdict(cfg), x_real, y_real,
                     *([] if init is None else [t for _, t in sorted(init["generator"].items())]))
    state = {"generator": gen, "discriminator": disc, "ema": ema, "opt_g": opt_g, "opt_d": opt_d}
    step, history, progress = 0, [], []
    resumed = _try_resume(resume_path, fp, state, g)
    if resumed is not None:
        step, history, progress = resumed
        log.info("resumed GAN training from %s at step %d", resume_path, step)
        if on_log is not None:
            for rec in history:
                on_log(int(rec["step"]), rec)
    last_saved = step if resumed is not None else None

    bar = tqdm(total=cfg.steps, initial=step, desc="train_gan", unit="step", leave=False, disable=None)
    while step < cfg.steps:
        rec = _train_step(pairs, opt_g, opt_d, spec, g, cfg, warmup=step < cfg.warmup_steps)
        step += 1
        if not all(math.isfinite(v) for v in rec.values()):
            raise GanDivergedError(_diverged(f"loss {rec}", step, resume_path, last_saved))
        if ema is not None:
            ema_update(ema, gen, cfg.ema_decay, step)
        if step % cfg.log_every == 0 or step == cfg.steps:
            rec = {"step": step, **rec}
            history.append(rec)
            if on_log is not None:
                on_log(step, rec)
            bar.set_postfix(d=f"{rec['loss_d']:.3f}", g=f"{rec['loss_g']:.3f}")
        bar.update(1)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            bad = [name for name in ("generator", "discriminator", "ema")
                   if state[name] is not None and not _finite(state[name])]
            if bad:  # finite losses but broken weights: never save them as a good checkpoint
                raise GanDivergedError(_diverged(f"non-finite {', '.join(bad)} weights", step,
                                                 resume_path, last_saved))
            progress.append(sample(shown, fixed_z, fixed_y, device))
            if resume_path is not None:
                _save_resume(resume_path, fp, state, g, step, history, progress)
                last_saved = step
    bar.close()
    return GanResult(shown.eval(), disc.eval(), gen_kwargs, disc_kwargs, history, progress,
                     raw_generator=None if ema is None else gen.eval(), per_class=cfg.per_class)


def _load_init(init: dict[str, Any], gen: nn.Module, disc: nn.Module) -> None:
    """Trained weights (the raw ones when the checkpoint also kept an average) into new networks;
    an architecture that does not match the params is a CheckpointError naming what differs."""
    raw = init.get("generator_raw")
    load_state(gen, init["generator"] if raw is None else raw, "init checkpoint", "generator")
    load_state(disc, init["discriminator"], "init checkpoint", "discriminator")


def _pairs(gen: nn.Module, disc: nn.Module, xt: torch.Tensor, yt: torch.Tensor,
           num_classes: int, per_class: bool) -> list[_Pair]:
    if not per_class:
        return [_Pair(gen, disc, xt, yt)]
    pairs = []
    for c in range(num_classes):
        rows = (yt == c).nonzero().squeeze(1)
        if len(rows) == 0:
            raise ValueError(f"gan.per_class: class {c} has no training images to train its GAN on")
        pairs.append(_Pair(gen.members[c], disc.members[c], xt[rows], torch.zeros_like(rows)))
    return pairs


def _train_step(pairs: list[_Pair], opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
                spec: GanSpec, g: torch.Generator, cfg: GanConfig, warmup: bool) -> dict[str, float]:
    for p in pairs:
        p.gen.train()
        p.disc.train()
    # (1) Update D (the critic) n_critic times: maximise realism of x, minimise that of G(z)
    for _ in range(cfg.n_critic):
        d_recs = [_d_loss(p, spec, g, cfg) for p in pairs]
        loss_d = sum(r["loss_d"] for r in d_recs)  # pairs share no weights: one sum, K gradients
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
    # (2) Update G: make D call G(z, y) real, for labels drawn like the real ones (while warming
    # up: match D's features of real images of the same labels instead)
    g_objs, g_recs = zip(*(_g_loss(p, spec, g, cfg, warmup) for p in pairs), strict=True)
    opt_g.zero_grad(set_to_none=True)
    sum(g_objs).backward()
    opt_g.step()
    return _mean_over_pairs([{**d, **gr} for d, gr in zip(d_recs, g_recs, strict=True)])


def _d_loss(p: _Pair, spec: GanSpec, g: torch.Generator, cfg: GanConfig) -> dict[str, torch.Tensor]:
    """The pair's discriminator loss (key ``loss_d``, with the penalty) and what to log of it."""
    idx = torch.randint(0, len(p.y), (cfg.batch_size,), generator=g).to(p.x.device)
    real, y = to_model_range(p.x[idx]), p.y[idx]                   # (B, C, H, W), (B,)
    z = torch.randn(cfg.batch_size, cfg.z_dim, generator=g).to(p.x.device)
    with torch.no_grad():
        fake = p.gen(z, y)                                          # (B, C, H, W) in [-1, 1]
    d_real, d_fake = p.disc(real, y), p.disc(fake, y)               # (B,), (B,)
    rec = {"loss_d": spec.d_loss(d_real, d_fake),
           "d_real": d_real.detach().mean(), "d_fake": d_fake.detach().mean()}
    if spec.gradient_penalty:
        gp = gradient_penalty(p.disc, real, fake, y, g)
        rec["loss_d"] = rec["loss_d"] + cfg.gp_weight * gp
        rec["gp"] = gp.detach()
    return rec


def _g_loss(p: _Pair, spec: GanSpec, g: torch.Generator, cfg: GanConfig,
            warmup: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``(objective to minimise, what to log)`` for the pair's generator."""
    idx = torch.randint(0, len(p.y), (cfg.batch_size,), generator=g).to(p.x.device)
    y = p.y[idx]                                                    # (B,)
    z = torch.randn(cfg.batch_size, cfg.z_dim, generator=g).to(p.x.device)
    h_fake = p.disc.features(p.gen(z, y))                           # (B, F)
    loss_g = spec.g_loss(p.disc.head(h_fake, y))
    if not warmup:
        return loss_g, {"loss_g": loss_g.detach()}
    with torch.no_grad():
        h_real = p.disc.features(to_model_range(p.x[idx]))          # (B, F), same labels
    loss_fm = feature_matching_loss(h_real, h_fake, y)
    return loss_fm, {"loss_g": loss_g.detach(), "loss_fm": loss_fm.detach()}


def _mean_over_pairs(recs: list[dict[str, torch.Tensor]]) -> dict[str, float]:
    return {k: torch.stack([r[k] for r in recs]).mean().item() for k in recs[0]}


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float, step: int) -> None:
    """``ema <- d * ema + (1 - d) * model`` for every floating-point weight and buffer (integer
    buffers are copied), with ``d = min(decay, (1 + step) / (10 + step))``.

    The ramp lets the average forget the random initial weights within the first few hundred
    steps instead of carrying ``decay**steps`` of them to the end (e.g. 14% after 2000 steps at
    0.999), as TensorFlow's ``ExponentialMovingAverage(num_updates=step)`` does.
    """
    d = min(decay, (1 + step) / (10 + step))
    for e, m in zip(ema.state_dict().values(), model.state_dict().values(), strict=True):
        if e.is_floating_point():
            e.lerp_(m, 1.0 - d)
        else:
            e.copy_(m)


@torch.no_grad()
def sample(gen: nn.Module, z: torch.Tensor, y: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Generator output for fixed inputs as uint8 ``(N, C, H, W)`` on the CPU."""
    was_training = gen.training
    gen.eval()
    out = to_uint8(gen(z.to(device), y.to(device))).cpu()
    gen.train(was_training)
    return out


def _finite(module: nn.Module) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in module.state_dict().values()
               if v.is_floating_point())


def _diverged(what: str, step: int, resume_path: str | Path | None, last_saved: int | None) -> str:
    if resume_path is None:
        kept = "no checkpoint is kept without a resume path"
    elif last_saved is None:
        kept = f"no good checkpoint was saved to {resume_path} yet"
    else:
        kept = f"the last good checkpoint is {resume_path} (step {last_saved})"
    return (f"GAN training diverged at step {step}: {what}; {kept}. Lower gan.lr_g / gan.lr_d "
            f"or change gan.seed.")


def _save_resume(path, fp, state, g, step, history, progress) -> None:
    save_checkpoint(path, {
        "kind": "resume-gan", "fingerprint": fp, "step": step, "history": history,
        "progress": progress, "rng": g.get_state(),
        **{name: None if obj is None else obj.state_dict() for name, obj in state.items()},
    })


def _try_resume(path, fp, state, g):
    if path is None or not Path(path).is_file():
        return None
    try:
        payload = load_checkpoint(path, kind="resume-gan")
    except CheckpointError as exc:
        log.warning("ignoring resume checkpoint: %s", exc)
        return None
    if payload.get("fingerprint") != fp:
        log.warning("ignoring resume checkpoint %s: made from other inputs or params", path)
        return None
    for name, obj in state.items():
        if obj is not None:
            obj.load_state_dict(payload[name])
    g.set_state(payload["rng"])
    return payload["step"], payload["history"], payload["progress"]
