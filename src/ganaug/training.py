"""Classifier training: in-memory uint8 tensors, seeded batches, early stopping on validation
accuracy, and checkpoints that resume to the same final weights after a kill.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ganaug.codedeps import code_fingerprint
from ganaug.configs.train import TrainConfig
from ganaug.errors import DataFileError, TrainingDiverged
from ganaug.inference import random_shift, to_model_range
from ganaug.models import CLASSIFIERS
from ganaug.resume import ResumeFile, discard_resume, fingerprint
from ganaug.runtime import Accel, generator

log = logging.getLogger(__name__)


@dataclass
class TrainState:
    """Everything a resumed run needs to continue exactly where the killed one stopped."""

    epoch: int = 0  # epochs completed
    best_acc: float = -1.0  # the best (smoothed) validation accuracy
    best_epoch: int = 0
    bad_epochs: int = 0
    smoothed: float | None = None  # moving average of the validation accuracy
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass
class TrainResult:
    model: nn.Module
    arch_kwargs: dict[str, Any]
    state: TrainState

    @property
    def summary(self) -> dict[str, Any]:
        return {"epochs_run": self.state.epoch, "best_epoch": self.state.best_epoch,
                "best_val_accuracy": self.state.best_acc}


def train_classifier(
    x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
    num_classes: int, cfg: TrainConfig, seed: int, device: torch.device,
    resume_path: str | Path | None = None, class_weights: np.ndarray | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None, name: str = "train",
) -> TrainResult:
    """Train ``cfg.arch`` on uint8 images ``(N, C, H, W)``; keep the weights of the best epoch.

    Validation accuracy (smoothed by ``cfg.val_smoothing``) picks the best epoch and stops
    training after ``cfg.patience`` epochs without improvement, never before ``cfg.min_epochs``.
    With ``resume_path``, a checkpoint is written every ``cfg.checkpoint_every`` epochs and picked
    up on the next call with the same inputs, params and code. ``on_epoch(record)`` is called
    after every epoch (the replayed history first on resume) with ``epoch``, ``train_loss``,
    ``val_accuracy``, ``val_smoothed`` and ``lr``; a line per epoch is logged as ``name``.

    Device habits (:class:`Accel`): bf16 autocast on CUDA (``cfg.amp``), channels-last tensors
    on CUDA and the CPU (``cfg.channels_last``), a compiled model (``cfg.compile``), and no host
    synchronisation inside an epoch (losses are summed on the device and read once per epoch).
    On the CPU the run is bit-deterministic.
    """
    if len(x_train) == 0:
        raise DataFileError("train_classifier: the training set is empty")
    if len(x_val) == 0:
        raise DataFileError(
            "train_classifier: the validation split is empty, but early stopping and the choice "
            "of the best epoch need validation images; give the source dataset a val split "
            "(its own, or one carved from train by data.val_fraction) and rerun prepare")
    c, h, w = x_train.shape[1:]
    arch_kwargs = {"in_channels": int(c), "num_classes": int(num_classes), "image_size": int(h),
                   "width": cfg.width}
    if cfg.pretrained is not None:  # only the transfer-learning models take it
        arch_kwargs["pretrained"] = cfg.pretrained
    torch.manual_seed(seed)
    model = CLASSIFIERS.get(cfg.arch)(**arch_kwargs).to(device)
    accel = Accel.for_device(device, cfg)
    model = accel.prepare(model)
    net = accel.compiled(model)  # what the loop calls; `model` holds the weights to save
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    counts = np.bincount(np.asarray(y_train, np.int64), minlength=num_classes)
    if class_weights is None and cfg.balance == "weighted":
        class_weights = balanced_class_weights(counts)
    weight = None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32)
    loss_fn = nn.CrossEntropyLoss(weight=None if weight is None else weight.to(device),
                                  label_smoothing=cfg.label_smoothing)

    xt = torch.from_numpy(np.ascontiguousarray(x_train)).to(device)  # uint8 (N, C, H, W)
    yt = torch.from_numpy(np.asarray(y_train, dtype=np.int64)).to(device)
    xv = torch.from_numpy(np.ascontiguousarray(x_val)).to(device)
    yv = torch.from_numpy(np.asarray(y_val, dtype=np.int64)).to(device)

    resume = ResumeFile(resume_path, "resume-classifier", fingerprint(
        asdict(cfg), seed, x_train, y_train, x_val, y_val, class_weights,
        code_fingerprint("ganaug.training")))
    state = TrainState()
    best = _Best(copy.deepcopy(model.state_dict()))
    payload = resume.load({"model": model, "optimizer": opt, "best": best})
    if payload is not None:
        state = TrainState(**payload["train_state"])
        log.info("%s: resumed classifier training at epoch %d", name, state.epoch)
        for rec in state.history if on_epoch is not None else []:
            on_epoch(rec)

    bar = tqdm(total=cfg.epochs, initial=state.epoch, desc=name, unit="epoch", leave=False,
               disable=None)
    while state.epoch < cfg.epochs and not _stop(state, cfg):
        epoch = state.epoch
        started = time.perf_counter()
        # Randomness of an epoch depends only on (seed, epoch): a resumed run repeats it exactly.
        torch.manual_seed(seed * 100_003 + epoch)
        g = generator(seed * 100_003 + epoch, device)
        loss, images = _run_epoch(net, opt, loss_fn, xt, yt, cfg, g, epoch, accel)
        acc = accuracy(net, xv, yv, max(cfg.batch_size, 256), accel)
        state.epoch += 1
        if not np.isfinite(loss):
            raise TrainingDiverged(f"classifier training diverged at epoch {state.epoch}: loss "
                                   f"{loss}; lower the learning rate (lr) or change the seed")
        smoothed = acc if state.smoothed is None else (
            cfg.val_smoothing * state.smoothed + (1 - cfg.val_smoothing) * acc)
        state.smoothed = smoothed
        rec = {"epoch": state.epoch, "train_loss": loss, "val_accuracy": acc,
               "val_smoothed": smoothed, "lr": learning_rate(cfg, state.epoch)}
        state.history.append(rec)
        if smoothed > state.best_acc:
            state.best_acc, state.best_epoch, state.bad_epochs = smoothed, state.epoch, 0
            best.weights = copy.deepcopy(model.state_dict())
        else:
            state.bad_epochs += 1
        seconds = time.perf_counter() - started
        log.info("%s epoch %d/%d: train loss %.4f, val accuracy %.4f (smoothed %.4f; best %.4f "
                 "at epoch %d), lr %.3g, %.1f s, %.0f images/s", name, state.epoch, cfg.epochs,
                 loss, acc, smoothed, state.best_acc, state.best_epoch, rec["lr"], seconds,
                 images / seconds)
        if on_epoch is not None:
            on_epoch(rec)
        bar.update(1)
        if state.epoch % cfg.checkpoint_every == 0:
            resume.save({"model": model, "optimizer": opt, "best": best},
                        train_state=asdict(state))
    bar.close()
    model.load_state_dict(best.weights)
    return TrainResult(Accel.release(model).eval(), arch_kwargs, state)


def _stop(state: TrainState, cfg: TrainConfig) -> bool:
    """Early stopping: ``patience`` epochs without a better (smoothed) validation accuracy, and
    at least ``min_epochs`` run."""
    return state.bad_epochs >= cfg.patience and state.epoch >= cfg.min_epochs


def learning_rate(cfg: TrainConfig, t: float) -> float:
    """The learning rate at ``t`` epochs into training (fractions of an epoch count).

    A linear warm-up from ``lr / 25`` over ``warmup_epochs`` (for ``onecycle`` without one: the
    first 30% of the epochs), then ``constant``, or a cosine decay to 0 at ``epochs``
    (``cosine``, ``onecycle``).
    """
    warm = cfg.warmup_epochs
    if cfg.schedule == "onecycle" and warm == 0:
        warm = 0.3 * cfg.epochs
    if t < warm:
        return cfg.lr * (1 / 25 + (1 - 1 / 25) * t / warm)
    if cfg.schedule == "constant":
        return cfg.lr
    progress = min(1.0, (t - warm) / max(cfg.epochs - warm, 1e-12))
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * progress))


def balanced_class_weights(counts: np.ndarray) -> np.ndarray:
    """Cross-entropy weights ``N / (K * n_c)`` over the K classes present (0 for absent ones)."""
    counts = np.asarray(counts, np.float64)
    present = counts > 0
    weights = np.zeros_like(counts)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights


def epoch_order(y: torch.Tensor, balance: str, g: torch.Generator) -> torch.Tensor:
    """Indices of one epoch, shuffled: all once ("none", "weighted"), or every present class
    drawn to the largest class count with replacement ("oversample") or to the smallest without
    ("undersample"). Random draws from ``g`` on its device; indices on ``g``'s device."""
    dev = g.device
    if balance not in ("oversample", "undersample"):
        return torch.randperm(len(y), generator=g, device=dev)
    y = y.to(dev)
    members = [(y == c).nonzero().squeeze(1) for c in torch.unique(y)]
    sizes = [len(m) for m in members]
    target = max(sizes) if balance == "oversample" else min(sizes)
    parts = []
    for m in members:
        if balance == "oversample":  # every image at least once, the rest drawn with replacement
            extra = m[torch.randint(0, len(m), (target - len(m),), generator=g, device=dev)]
            parts.append(torch.cat([m, extra]))
        else:
            parts.append(m[torch.randperm(len(m), generator=g, device=dev)[:target]])
    order = torch.cat(parts)
    return order[torch.randperm(len(order), generator=g, device=dev)]


def epoch_indices(y: torch.Tensor, cfg: TrainConfig, g: torch.Generator) -> torch.Tensor:
    """The images of one epoch: one :func:`epoch_order` pass, or exactly ``cfg.epoch_images``
    indices: shuffled passes one after the other, the last one cut short (a training set larger
    than ``epoch_images`` shows a fresh random part of itself each epoch)."""
    order = epoch_order(y, cfg.balance, g)
    if cfg.epoch_images is None:
        return order
    parts, shown = [order], len(order)
    while shown < cfg.epoch_images:
        parts.append(epoch_order(y, cfg.balance, g))
        shown += len(parts[-1])
    return torch.cat(parts)[: cfg.epoch_images]


def augment(x: torch.Tensor, cfg: TrainConfig, g: torch.Generator) -> torch.Tensor:
    """The training augmentations of a batch in [-1, 1], random draws from ``g`` (on its
    device): shifts (a random crop of the zero-padded image), horizontal flips of half the
    images, small rotations, random erasing."""
    x = random_shift(x, cfg.max_shift, g)
    if cfg.hflip:
        flip = (torch.rand(len(x), generator=g, device=g.device) < 0.5).to(x.device)
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    if cfg.max_rotation > 0:
        angles = (torch.rand(len(x), generator=g, device=g.device) * 2 - 1) * cfg.max_rotation
        x = rotate(x, angles.to(x.device))
    if cfg.erasing_p > 0:
        x = random_erasing(x, cfg.erasing_p, g)
    return x


def rotate(x: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Rotate image i by ``degrees[i]`` (counter-clockwise) about its centre, bilinear; pixels
    coming from outside are -1 (black), like the padding of the shifts."""
    theta = torch.deg2rad(degrees.to(x.dtype))
    cos, sin = torch.cos(theta), torch.sin(theta)
    zero = torch.zeros_like(cos)
    mat = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(mat, list(x.shape), align_corners=False)  # (N, H, W, 2)
    return F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False) - 1


def random_erasing(x: torch.Tensor, p: float, g: torch.Generator,
                   area: tuple[float, float] = (0.02, 0.33),
                   ratio: tuple[float, float] = (0.3, 3.3)) -> torch.Tensor:
    """Zero (mid-grey) one random rectangle in each image with probability ``p`` (Zhong et al.
    2020): its area a uniform fraction of the image in ``area``, its aspect ratio log-uniform
    in ``ratio``, its position uniform among those that fit."""
    n, _, h, w = x.shape

    def rand() -> torch.Tensor:
        return torch.rand(n, generator=g, device=g.device).to(x.device)

    apply = rand() < p
    frac = area[0] + (area[1] - area[0]) * rand()
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * rand()
    aspect = torch.exp(log_r)
    eh = torch.sqrt(frac * h * w * aspect).round().clamp(1, h)        # (N,)
    ew = torch.sqrt(frac * h * w / aspect).round().clamp(1, w)
    top = (rand() * (h - eh + 1)).floor()
    left = (rand() * (w - ew + 1)).floor()
    rows = torch.arange(h, device=x.device)[None]                       # (1, H)
    cols = torch.arange(w, device=x.device)[None]
    in_r = (rows >= top[:, None]) & (rows < (top + eh)[:, None])        # (N, H)
    in_c = (cols >= left[:, None]) & (cols < (left + ew)[:, None])      # (N, W)
    erase = in_r[:, :, None] & in_c[:, None, :] & apply[:, None, None]  # (N, H, W)
    return x.masked_fill(erase[:, None], 0.0)


def _run_epoch(net: nn.Module, opt: torch.optim.Optimizer, loss_fn: nn.Module,
               xt: torch.Tensor, yt: torch.Tensor, cfg: TrainConfig, g: torch.Generator,
               epoch: int, accel: Accel) -> tuple[float, int]:
    """One epoch; returns the mean training loss (read from the device once, at the end) and
    the number of training images it showed."""
    net.train()
    order = epoch_indices(yt, cfg, g).to(xt.device)
    batches = [order[s: s + cfg.batch_size] for s in range(0, len(order), cfg.batch_size)]
    batches = [b for b in batches if len(b) >= 2]  # batch norm needs two: drop a lone straggler
    total = torch.zeros((), device=xt.device)
    seen = 0
    for i, idx in enumerate(batches):
        for group in opt.param_groups:
            group["lr"] = learning_rate(cfg, epoch + i / len(batches))
        xb = accel.images(augment(to_model_range(xt[idx]), cfg, g))  # (B, C, H, W) in [-1, 1]
        with accel.autocast():
            loss = loss_fn(net(xb), yt[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.detach().float() * len(idx)
        seen += len(idx)
    return float(total) / max(seen, 1), seen


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int,
             accel: Accel | None = None) -> float:
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=y.device)
    for start in range(0, len(y), batch_size):
        xb = to_model_range(x[start: start + batch_size])
        if accel is not None:
            xb = accel.images(xb)
        with accel.autocast() if accel is not None else contextlib.nullcontext():
            logits = model(xb)
        correct += (logits.argmax(1) == y[start: start + batch_size]).sum()
    return int(correct) / len(y)


@contextlib.contextmanager
def live_curves(plots_dir: str | Path | None):
    """An ``on_epoch`` callback that writes the training curves with dvclive into ``plots_dir``
    (``plots/metrics/<name>.tsv`` by epoch); a no-op without a directory."""
    if plots_dir is None:
        yield None
        return
    from dvclive import Live

    with Live(dir=str(plots_dir), save_dvc_exp=False, dvcyaml=None, report=None) as live:
        def on_epoch(rec: dict[str, float]) -> None:
            live.step = int(rec["epoch"])
            for key, value in rec.items():
                if key != "epoch":
                    live.log_metric(key, value)
            live.make_summary()

        yield on_epoch


@torch.no_grad()
def logits_of(model: nn.Module, x: np.ndarray, batch_size: int, device: torch.device
              ) -> np.ndarray:
    """Logits ``(N, K)`` float64 of uint8 images, a batch at a time (model in eval mode)."""
    from ganaug.inference import batched

    model.eval()
    return batched(model, x, batch_size, device).double().numpy()


class _Best:
    """The best epoch's weights, with the state_dict interface the resume file expects."""

    def __init__(self, weights: dict) -> None:
        self.weights = weights

    def state_dict(self) -> dict:
        return self.weights

    def load_state_dict(self, weights: dict) -> None:
        self.weights = weights


__all__ = ["TrainResult", "TrainState", "accuracy", "augment", "balanced_class_weights",
           "discard_resume", "epoch_indices", "epoch_order", "fingerprint", "train_classifier"]
