"""Adversarial training of a conditional GAN, resumable from periodic checkpoints."""

from __future__ import annotations

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
from ganaug.gan.registry import GANS, build_gan
from ganaug.models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ganaug.runtime import generator
from ganaug.tensors import to_model_range
from ganaug.training import fingerprint

log = logging.getLogger(__name__)


class GanDivergedError(FloatingPointError):
    """A GAN loss became NaN or infinite."""


@dataclass
class GanResult:
    generator: nn.Module
    discriminator: nn.Module
    gen_kwargs: dict[str, Any]
    disc_kwargs: dict[str, Any]
    history: list[dict[str, float]]
    # Fixed-noise samples at each checkpoint: uint8 (n_checkpoints, num_classes, C, H, W).
    progress: list[torch.Tensor] = field(default_factory=list)


def fixed_inputs(cfg: GanConfig, num_classes: int, per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed noise batch for sample grids: row c holds ``per_class`` samples of class c."""
    g = generator(cfg.seed + 1)
    z = torch.randn(num_classes * per_class, cfg.z_dim, generator=g)
    y = torch.arange(num_classes).repeat_interleave(per_class)
    return z, y


def train_gan(x_real: np.ndarray, y_real: np.ndarray, num_classes: int, cfg: GanConfig,
              device: torch.device, resume_path: str | Path | None = None,
              on_log: Any = None) -> GanResult:
    """Train ``cfg.arch`` on uint8 images ``(N, C, H, W)`` with labels ``(N,)``.

    Real batches and noise come from one generator seeded by ``cfg.seed``; its state is saved with
    every checkpoint, so a run resumed after a kill ends with the same weights. ``on_log(step,
    record)`` is called every ``cfg.log_every`` steps (with the replayed history first on resume).
    """
    spec = GANS.get(cfg.arch)()
    torch.manual_seed(cfg.seed)
    gen, disc, gen_kwargs, disc_kwargs = build_gan(cfg.arch, cfg.z_dim, cfg.width, num_classes,
                                                   tuple(x_real.shape[1:]))
    gen, disc = gen.to(device), disc.to(device)
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    xt = torch.from_numpy(np.ascontiguousarray(x_real)).to(device)  # uint8 (N, C, H, W)
    yt = torch.from_numpy(np.asarray(y_real, dtype=np.int64)).to(device)
    g = generator(cfg.seed)
    fixed_z, fixed_y = fixed_inputs(cfg, num_classes, per_class=1)

    fp = fingerprint(asdict(cfg), x_real, y_real)
    step, history, progress = 0, [], []
    resumed = _try_resume(resume_path, fp, gen, disc, opt_g, opt_d, g)
    if resumed is not None:
        step, history, progress = resumed
        log.info("resumed GAN training from %s at step %d", resume_path, step)
        if on_log is not None:
            for rec in history:
                on_log(int(rec["step"]), rec)

    bar = tqdm(total=cfg.steps, initial=step, desc="train_gan", unit="step", leave=False, disable=None)
    while step < cfg.steps:
        rec = _train_step(gen, disc, opt_g, opt_d, spec, xt, yt, g, cfg)
        step += 1
        if not all(math.isfinite(v) for v in rec.values()):
            raise GanDivergedError(
                f"GAN training diverged at step {step}: {rec}; the last good checkpoint is "
                f"{resume_path} (step {step - step % cfg.checkpoint_every}). Lower gan.lr_g / "
                f"gan.lr_d or change gan.seed."
            )
        if step % cfg.log_every == 0 or step == cfg.steps:
            rec = {"step": step, **rec}
            history.append(rec)
            if on_log is not None:
                on_log(step, rec)
            bar.set_postfix(d=f"{rec['loss_d']:.3f}", g=f"{rec['loss_g']:.3f}")
        bar.update(1)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            progress.append(sample(gen, fixed_z, fixed_y, device))
            if resume_path is not None:
                _save_resume(resume_path, fp, gen, disc, opt_g, opt_d, g, step, history, progress)
    bar.close()
    return GanResult(gen.eval(), disc.eval(), gen_kwargs, disc_kwargs, history, progress)


def _train_step(gen: nn.Module, disc: nn.Module, opt_g: torch.optim.Optimizer,
                opt_d: torch.optim.Optimizer, spec: Any, xt: torch.Tensor, yt: torch.Tensor,
                g: torch.Generator, cfg: GanConfig) -> dict[str, float]:
    gen.train()
    disc.train()
    # (1) Update D (the critic) n_critic times: maximise realism of x, minimise that of G(z)
    for _ in range(cfg.n_critic):
        idx = torch.randint(0, len(yt), (cfg.batch_size,), generator=g).to(xt.device)
        real, y = to_model_range(xt[idx]), yt[idx]          # (B, C, H, W), (B,)
        z = torch.randn(cfg.batch_size, cfg.z_dim, generator=g).to(xt.device)
        with torch.no_grad():
            fake = gen(z, y)                                 # (B, C, H, W) in [-1, 1]
        d_real, d_fake = disc(real, y), disc(fake, y)        # (B,), (B,)
        loss_d = spec.d_loss(d_real, d_fake)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
    # (2) Update G: make D call G(z, y) real, for labels drawn like the real ones
    y = yt[torch.randint(0, len(yt), (cfg.batch_size,), generator=g).to(xt.device)]
    z = torch.randn(cfg.batch_size, cfg.z_dim, generator=g).to(xt.device)
    loss_g = spec.g_loss(disc(gen(z, y), y))
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    return {"loss_d": loss_d.item(), "loss_g": loss_g.item(),
            "d_real": d_real.mean().item(), "d_fake": d_fake.mean().item()}


@torch.no_grad()
def sample(gen: nn.Module, z: torch.Tensor, y: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Generator output for fixed inputs as uint8 ``(N, C, H, W)`` on the CPU."""
    from ganaug.tensors import to_uint8

    was_training = gen.training
    gen.eval()
    out = to_uint8(gen(z.to(device), y.to(device))).cpu()
    gen.train(was_training)
    return out


def _save_resume(path, fp, gen, disc, opt_g, opt_d, g, step, history, progress) -> None:
    save_checkpoint(path, {
        "kind": "resume-gan", "fingerprint": fp, "step": step, "history": history,
        "progress": progress, "generator": gen.state_dict(), "discriminator": disc.state_dict(),
        "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "rng": g.get_state(),
    })


def _try_resume(path, fp, gen, disc, opt_g, opt_d, g):
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
    gen.load_state_dict(payload["generator"])
    disc.load_state_dict(payload["discriminator"])
    opt_g.load_state_dict(payload["opt_g"])
    opt_d.load_state_dict(payload["opt_d"])
    g.set_state(payload["rng"])
    return payload["step"], payload["history"], payload["progress"]
