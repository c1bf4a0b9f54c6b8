"""The training loop every GAN family shares: optimisers, ``n_critic`` discriminator updates per
generator update, DiffAugment / ADA / LeCam around every discriminator call, an EMA of the
generator, a feature-matching warm-up, periodic resume checkpoints, and NaN checks.

What one update computes is the family's (:meth:`GanFamily.d_loss`, :meth:`GanFamily.g_loss`);
how the step is driven is here, once. Losses are summed on the device and read once per
``log_every`` steps (no host synchronisation per step).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ganaug.checkpoints import load_state
from ganaug.codedeps import code_fingerprint
from ganaug.configs.gan import GanConfig
from ganaug.errors import TrainingDiverged
from ganaug.gan.augment import ada_update, diff_augment, lecam_reg
from ganaug.gan.family import GanFamily, Nets, RealBatch, family_for, gan_payload
from ganaug.inference import to_model_range
from ganaug.resume import ResumeFile, fingerprint
from ganaug.runtime import Accel, generator
from ganaug.synthetic.pool import produce_uint8

log = logging.getLogger(__name__)

GanDivergedError = TrainingDiverged  # the name older code and tests use


class RealData:
    """The real training images, resident on the device as uint8; draws batches from ``g``."""

    def __init__(self, x: np.ndarray, y: np.ndarray, device: torch.device,
                 accel: Accel | None = None) -> None:
        self.x = torch.from_numpy(np.ascontiguousarray(x)).to(device)  # uint8 (N, C, H, W)
        self.y = torch.from_numpy(np.asarray(y, dtype=np.int64)).to(device)
        self.device = device
        self.accel = accel

    def batch(self, n: int, g: torch.Generator, rows: torch.Tensor | None = None) -> RealBatch:
        """``n`` images drawn with replacement (from ``rows`` only, when given)."""
        pool = len(self.y) if rows is None else len(rows)
        idx = torch.randint(0, pool, (n,), generator=g, device=g.device).to(self.device)
        if rows is not None:
            idx = rows[idx]
        x = to_model_range(self.x[idx])
        return RealBatch(x if self.accel is None else self.accel.images(x), self.y[idx])


class StepContext:
    """What a family's losses use besides the networks: the params, the random generator, and
    the data-efficient tricks around every discriminator call."""

    def __init__(self, cfg: GanConfig, g: torch.Generator, device: torch.device) -> None:
        self.cfg, self.g, self.device = cfg, g, device
        self.p = torch.tensor(float(cfg.augment_p), device=device)  # augmentation probability
        self.ema_real: torch.Tensor | None = None  # LeCam's moving averages of D's outputs
        self.ema_fake: torch.Tensor | None = None
        self.sign_sum = torch.zeros((), device=device)  # ADA's sum of sign(D(real))
        self.sign_n = torch.zeros((), device=device)

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """DiffAugment of a batch in [-1, 1] (identity when ``gan.diffaugment`` is empty)."""
        if not self.cfg.diffaugment:
            return x
        return diff_augment(x, self.cfg.diffaugment, self.g, self.p)

    def disc(self, discriminator: nn.Module, x: torch.Tensor, *args: Any) -> Any:
        """Call the discriminator on augmented images: every discriminator call goes here."""
        return discriminator(self.augment(x), *args)

    def regularize(self, d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
        """LeCam's term for this update (0 when off); also records ``sign(D(real))`` for ADA."""
        if self.cfg.ada_target is not None:
            self.sign_sum = self.sign_sum + torch.sign(d_real.detach()).sum()
            self.sign_n = self.sign_n + d_real.numel()
        if self.cfg.lecam_weight == 0:
            return torch.zeros((), device=d_real.device)
        decay = self.cfg.lecam_decay
        real_mean, fake_mean = d_real.detach().mean(), d_fake.detach().mean()
        self.ema_real = real_mean if self.ema_real is None else torch.lerp(real_mean, self.ema_real, decay)
        self.ema_fake = fake_mean if self.ema_fake is None else torch.lerp(fake_mean, self.ema_fake, decay)
        return self.cfg.lecam_weight * lecam_reg(d_real, d_fake, self.ema_real, self.ema_fake)

    def adapt(self, step: int) -> None:
        """Every ``ada_interval`` steps, move the augmentation probability (ADA)."""
        cfg = self.cfg
        if cfg.ada_target is None or step % cfg.ada_interval:
            return
        shown = cfg.batch_size * cfg.n_critic * cfg.ada_interval
        r_t = (self.sign_sum / self.sign_n.clamp_min(1)).item()  # one read per interval
        self.p = torch.tensor(ada_update(float(self.p), r_t, cfg.ada_target, shown, cfg.ada_kimg),
                              device=self.device)
        self.sign_sum.zero_()
        self.sign_n.zero_()

    def state_dict(self) -> dict[str, Any]:
        return {k: (None if v is None else v.detach().cpu()) for k, v in (
            ("p", self.p), ("ema_real", self.ema_real), ("ema_fake", self.ema_fake),
            ("sign_sum", self.sign_sum), ("sign_n", self.sign_n))}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k in ("p", "ema_real", "ema_fake", "sign_sum", "sign_n"):
            v = state[k]
            setattr(self, k, None if v is None else v.to(self.device))


@dataclass
class GanResult:
    family: GanFamily
    nets: Nets
    ema: nn.Module | None  # the moving average of the generator's weights, when kept
    history: list[dict[str, float]]
    # Samples of the generator used for generation at each checkpoint: uint8 (K, C, H, W) each.
    progress: list[torch.Tensor] = field(default_factory=list)

    @property
    def generator(self) -> nn.Module:
        """The generator ``generate`` uses: the EMA one when ``gan.ema_decay`` is set."""
        return self.nets.generator if self.ema is None else self.ema

    @property
    def discriminator(self) -> nn.Module:
        return self.nets.discriminator

    def payload(self, meta: dict[str, Any]) -> dict[str, Any]:
        return gan_payload(self.family, self.nets, self.ema, meta)


def progress_samples(family: GanFamily, gen: nn.Module, x_real: np.ndarray, y_real: np.ndarray,
                     per_class: int, seed: int, device: torch.device) -> torch.Tensor:
    """The same inputs every time (seeded): ``per_class`` images of each class, class-major,
    uint8 ``(K * per_class, C, H, W)`` on the CPU."""
    labels = np.repeat(np.arange(family.num_classes, dtype=np.int64), per_class)
    sampler = family.sampler(gen, x_real, y_real, device)
    was_training = gen.training
    gen.eval()
    out = produce_uint8(sampler, labels, sampler.plan(labels, seed), generator(seed))
    gen.train(was_training)
    return torch.from_numpy(out)


def train_gan(x_real: np.ndarray, y_real: np.ndarray, num_classes: int, cfg: GanConfig,
              device: torch.device, resume_path: str | Path | None = None,
              on_log: Any = None, init: dict[str, Any] | None = None) -> GanResult:
    """Train the family ``cfg.arch`` on uint8 images ``(N, C, H, W)`` with labels ``(N,)``.

    Real batches, noise, augmentation and penalty draws come from one generator seeded by
    ``cfg.seed``; its state is saved with every checkpoint (with the weights, the EMA, the
    optimisers and the augmentation state), so a run resumed after a kill ends with the same
    weights. ``on_log(step, record)`` is called every ``cfg.log_every`` steps (with the replayed
    history first on resume). A NaN or infinite loss or weight stops training with
    :class:`TrainingDiverged`; the resume checkpoint then still holds the last good state.

    ``init``: a ``kind: gan`` checkpoint payload to fine-tune from (iterative refinement) instead
    of a fresh initialisation; the optimisers start fresh.
    """
    family = family_for(cfg, num_classes, tuple(x_real.shape[1:]))
    torch.manual_seed(cfg.seed)
    nets = family.build()
    if init is not None:
        _load_init(init, nets)
    accel = Accel.for_device(device, cfg)  # channels_last; bf16 autocast with gan.amp on CUDA
    nets = accel.prepare(nets.to(device))
    ema = copy.deepcopy(nets.generator).eval().requires_grad_(False) if cfg.ema_decay else None
    if ema is not None and init is not None:  # the average carries on from the checkpoint's
        load_state(ema, init["generator"], "init checkpoint", "generator")
    opt_g = torch.optim.Adam(nets.generator.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(nets.discriminator.parameters(), lr=cfg.lr_d,
                             betas=(cfg.beta1, cfg.beta2))
    data = RealData(x_real, y_real, device, accel)
    g = generator(cfg.seed, device)
    ctx = StepContext(cfg, g, device)
    shown = nets.generator if ema is None else ema

    init_parts = [] if init is None else [t for _, t in sorted(init["generator"].items())]
    # The code: the loop's and the family's (a plugin's module lies outside ganaug).
    code = code_fingerprint("ganaug.gan.train", type(family).__module__)
    resume = ResumeFile(resume_path, "resume-gan", fingerprint(
        family.cfg.section(), x_real, y_real, *init_parts, code))
    state = {"nets": nets, "ema": ema, "opt_g": opt_g, "opt_d": opt_d, "ctx": ctx, "rng": _Rng(g)}
    step, history, progress = 0, [], []
    payload = resume.load(state)
    if payload is not None:
        step, history, progress = payload["step"], payload["history"], payload["progress"]
        log.info("resumed GAN training at step %d", step)
        for rec in history if on_log is not None else []:
            on_log(int(rec["step"]), rec)
    last_saved = step if payload is not None else None

    sums: dict[str, torch.Tensor] = {}
    last_log = time.perf_counter()
    bar = tqdm(total=cfg.steps, initial=step, desc="train_gan", unit="step", leave=False,
               disable=None)
    while step < cfg.steps:
        rec = _train_step(family, nets, opt_g, opt_d, data, ctx, accel,
                          warmup=step < cfg.warmup_steps)
        step += 1
        for k, v in rec.items():
            sums[k] = sums.get(k, 0.0) + v.detach()
        if ema is not None:
            ema_update(ema, nets.generator, cfg.ema_decay, step)
        ctx.adapt(step)
        if step % cfg.log_every == 0 or step == cfg.steps:
            n = cfg.log_every if step % cfg.log_every == 0 else step % cfg.log_every
            rec = {"step": step, **{k: float(v) / n for k, v in sums.items()}}
            if cfg.diffaugment:
                rec["augment_p"] = float(ctx.p)
            sums = {}
            if not all(math.isfinite(v) for v in rec.values()):
                raise TrainingDiverged(_diverged(f"loss {rec}", step, resume_path, last_saved))
            history.append(rec)
            if on_log is not None:
                on_log(step, rec)
            now = time.perf_counter()
            seen = cfg.batch_size * (cfg.n_critic + 1) * n  # batches through D since the last line
            log.info("train_gan step %d/%d: %s; %.0f images/s", step, cfg.steps,
                     ", ".join(f"{k} {v:.4g}" for k, v in rec.items() if k != "step"),
                     seen / max(now - last_log, 1e-9))
            last_log = now
        bar.update(1)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            bad = [name for name, m in (("generator", nets.generator),
                                        ("discriminator", nets.discriminator), ("ema", ema))
                   if m is not None and not _finite(m)]
            if bad:  # finite losses but broken weights: never save them as a good checkpoint
                raise TrainingDiverged(_diverged(f"non-finite {', '.join(bad)} weights", step,
                                                 resume_path, last_saved))
            progress.append(progress_samples(family, shown, x_real, y_real, 1, cfg.seed + 1,
                                             device))
            resume.save(state, step=step, history=history, progress=progress)
            last_saved = step if resume.path is not None else None
    bar.close()
    nets = Accel.release(nets).eval()  # saved weights laid out as always, whatever trained them
    ema = None if ema is None else Accel.release(ema)
    return GanResult(family, nets, ema, history, progress)


class _Rng:
    """A torch.Generator with the state_dict interface the resume file expects."""

    def __init__(self, g: torch.Generator) -> None:
        self.g = g

    def state_dict(self) -> torch.Tensor:
        return self.g.get_state()

    def load_state_dict(self, state: torch.Tensor) -> None:
        self.g.set_state(state)


def _train_step(family: GanFamily, nets: Nets, opt_g: torch.optim.Optimizer,
                opt_d: torch.optim.Optimizer, data: RealData, ctx: StepContext,
                accel: Accel, warmup: bool) -> dict[str, torch.Tensor]:
    nets.train()
    # (1) Update D (the critic) n_critic times
    for _ in range(ctx.cfg.n_critic):
        with accel.autocast():  # the forward passes; backward outside, as autocast asks
            loss_d, d_logs = family.d_loss(nets, data, ctx)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
    # (2) Update G once (while warming up: by feature matching, where the family has it)
    with accel.autocast():
        loss_g, g_logs = family.g_loss(nets, data, ctx, warmup)
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    return {"loss_d": loss_d.detach(), **d_logs, **g_logs}  # the family logs loss_g


def _load_init(init: dict[str, Any], nets: Nets) -> None:
    """Trained weights (the raw ones when the checkpoint also kept an average) into new networks;
    an architecture that does not match the params is a CheckpointError naming what differs."""
    raw = init.get("generator_raw")
    load_state(nets.generator, init["generator"] if raw is None else raw, "init checkpoint",
               "generator")
    load_state(nets.discriminator, init["discriminator"], "init checkpoint", "discriminator")


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
