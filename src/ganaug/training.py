"""Classifier training: in-memory uint8 tensors, seeded batches, early stopping on validation
accuracy, and checkpoints that resume to the same final weights after a kill.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ganaug.codedeps import code_fingerprint
from ganaug.config import TrainConfig
from ganaug.errors import DataFileError, TrainingDiverged
from ganaug.models import CLASSIFIERS
from ganaug.resume import ResumeFile, discard_resume, fingerprint
from ganaug.runtime import generator
from ganaug.tensors import random_shift, to_model_range

log = logging.getLogger(__name__)


@dataclass
class TrainState:
    """Everything a resumed run needs to continue exactly where the killed one stopped."""

    epoch: int = 0  # epochs completed
    best_acc: float = -1.0
    best_epoch: int = 0
    bad_epochs: int = 0
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
) -> TrainResult:
    """Train ``cfg.arch`` on uint8 images ``(N, C, H, W)``; keep the weights of the best epoch.

    Validation accuracy picks the best epoch and stops training after ``cfg.patience`` epochs
    without improvement. With ``resume_path``, a checkpoint is written every
    ``cfg.checkpoint_every`` epochs and picked up on the next call with the same inputs.
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
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    counts = np.bincount(np.asarray(y_train, np.int64), minlength=num_classes)
    if class_weights is None and cfg.balance == "weighted":
        class_weights = balanced_class_weights(counts)
    weight = None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32)
    loss_fn = nn.CrossEntropyLoss(weight=None if weight is None else weight.to(device))

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
        log.info("resumed classifier training at epoch %d", state.epoch)

    bar = tqdm(total=cfg.epochs, initial=state.epoch, desc="train", unit="epoch", leave=False, disable=None)
    while state.epoch < cfg.epochs and state.bad_epochs < cfg.patience:
        epoch = state.epoch
        # Randomness of an epoch depends only on (seed, epoch): a resumed run repeats it exactly.
        torch.manual_seed(seed * 100_003 + epoch)
        g = generator(seed * 100_003 + epoch)
        loss = _run_epoch(model, opt, loss_fn, xt, yt, cfg, g)
        acc = accuracy(model, xv, yv, cfg.batch_size)
        state.epoch += 1
        state.history.append({"epoch": state.epoch, "train_loss": loss, "val_accuracy": acc})
        if not np.isfinite(loss):
            raise TrainingDiverged(f"classifier training diverged at epoch {state.epoch}: loss "
                                   f"{loss}; lower the learning rate (lr) or change the seed")
        if acc > state.best_acc:
            state.best_acc, state.best_epoch, state.bad_epochs = acc, state.epoch, 0
            best.weights = copy.deepcopy(model.state_dict())
        else:
            state.bad_epochs += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}", val_acc=f"{acc:.3f}")
        if state.epoch % cfg.checkpoint_every == 0:
            resume.save({"model": model, "optimizer": opt, "best": best},
                        train_state=asdict(state))
    bar.close()
    model.load_state_dict(best.weights)
    return TrainResult(model.eval(), arch_kwargs, state)


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
    ("undersample")."""
    if balance not in ("oversample", "undersample"):
        return torch.randperm(len(y), generator=g)
    y = y.cpu()
    members = [(y == c).nonzero().squeeze(1) for c in torch.unique(y)]
    sizes = [len(m) for m in members]
    target = max(sizes) if balance == "oversample" else min(sizes)
    parts = []
    for m in members:
        if balance == "oversample":  # every image at least once, the rest drawn with replacement
            extra = m[torch.randint(0, len(m), (target - len(m),), generator=g)]
            parts.append(torch.cat([m, extra]))
        else:
            parts.append(m[torch.randperm(len(m), generator=g)[:target]])
    order = torch.cat(parts)
    return order[torch.randperm(len(order), generator=g)]


def augment(x: torch.Tensor, cfg: TrainConfig, g: torch.Generator) -> torch.Tensor:
    """Random shifts and, with ``cfg.hflip``, horizontal flips of half the images, in [-1, 1]."""
    x = random_shift(x, cfg.max_shift, g)
    if cfg.hflip:
        flip = (torch.rand(len(x), generator=g) < 0.5).to(x.device)
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return x


def _run_epoch(model: nn.Module, opt: torch.optim.Optimizer, loss_fn: nn.Module,
               xt: torch.Tensor, yt: torch.Tensor, cfg: TrainConfig, g: torch.Generator) -> float:
    model.train()
    order = epoch_order(yt, cfg.balance, g).to(xt.device)
    total, seen = 0.0, 0
    for start in range(0, len(order), cfg.batch_size):
        idx = order[start: start + cfg.batch_size]
        if len(idx) < 2:  # batch norm needs two samples; drop a lone straggler
            continue
        xb = augment(to_model_range(xt[idx]), cfg, g)  # (B, C, H, W) in [-1, 1]
        loss = loss_fn(model(xb), yt[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.item() * len(idx)
        seen += len(idx)
    return total / max(seen, 1)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    model.eval()
    correct = 0
    for start in range(0, len(y), batch_size):
        logits = model(to_model_range(x[start: start + batch_size]))
        correct += (logits.argmax(1) == y[start: start + batch_size]).sum().item()
    return correct / len(y)


class _Best:
    """The best epoch's weights, with the state_dict interface the resume file expects."""

    def __init__(self, weights: dict) -> None:
        self.weights = weights

    def state_dict(self) -> dict:
        return self.weights

    def load_state_dict(self, weights: dict) -> None:
        self.weights = weights


__all__ = ["TrainResult", "TrainState", "accuracy", "augment", "balanced_class_weights",
           "discard_resume", "epoch_order", "fingerprint", "train_classifier"]
