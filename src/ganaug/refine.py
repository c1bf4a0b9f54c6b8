"""Iterative refinement: a round fine-tunes a GAN on the real images plus the synthetic images
selected from it, then generates, scores and selects again (one published FER2013 study).

A round's directory (written atomically by :func:`save_round`):

- ``gan.pt``: the fine-tuned GAN checkpoint (``kind: gan``)
- ``selected.npz``: ``x`` uint8 ``(K_total, C, H, W)`` and ``y`` int64, the round's selection,
  which trains the round's classifiers and feeds the next round
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ganaug.config import GanConfig, GenerateConfig, RefineConfig, ScoreConfig
from ganaug.data import Prepared
from ganaug.fid import compare
from ganaug.gan.train import GanResult, train_gan
from ganaug.io import atomic_path
from ganaug.models.checkpoint import save_checkpoint
from ganaug.pool import generate_pool, load_pool, pool_size_per_class
from ganaug.scoring import score_images
from ganaug.selection import choose
from ganaug.tensors import batched


def fine_tune(data: Prepared, start: dict[str, Any], selected: tuple[np.ndarray, np.ndarray],
              gan_cfg: GanConfig, steps: int, device: torch.device,
              resume_path: str | Path | None) -> GanResult:
    """Fine-tune the GAN checkpoint ``start`` for ``steps`` steps on real + selected images."""
    x_real, y_real = data.split("train")
    x = np.concatenate([x_real, selected[0]])
    y = np.concatenate([y_real, selected[1]])
    cfg = dataclasses.replace(gan_cfg, steps=steps,
                              checkpoint_every=min(gan_cfg.checkpoint_every, steps),
                              warmup_steps=0)  # the generator is trained already
    return train_gan(x, y, data.num_classes, cfg, device, resume_path, init=start)


def generate_score_select(gen: nn.Module, disc: nn.Module, scorer: nn.Module, data: Prepared,
                          z_dim: int, cfg: RefineConfig, select_cfg: Any,
                          generate_cfg: GenerateConfig, score_cfg: ScoreConfig,
                          device: torch.device) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """A fresh pool from ``gen`` (in a temporary directory), scored and selected like the main
    pipeline; returns the selected images, their labels and stats (FID/KID in the scorer space)."""
    counts = data.class_counts("train")
    per_class = pool_size_per_class(counts, generate_cfg.pool_multiplier, cfg.ratio)
    with tempfile.TemporaryDirectory(prefix="ganaug-refine-") as tmp:
        generate_pool(gen, data.num_classes, per_class, z_dim, generate_cfg.batch_size,
                      generate_cfg.seed, device, Path(tmp) / "pool", {"refine": True})
        images, labels, _ = load_pool(Path(tmp) / "pool")
        table, fake_feats = score_images(images, labels, scorer, disc, score_cfg.batch_size,
                                         device)
        chosen, stats = choose(table, counts, cfg.ratio, cfg.strategy, select_cfg, data.classes)
        x_sel, y_sel = np.asarray(images[chosen]), labels[chosen]
    x_real, _ = data.split("train")
    real_feats = batched(scorer.features, x_real, score_cfg.batch_size, device).numpy()
    kw = {"feature_space": "scorer", "subset_size": score_cfg.kid_subset_size,
          "subsets": score_cfg.kid_subsets, "seed": score_cfg.seed}
    stats["fid_kid_pool"] = compare(real_feats, fake_feats, **kw)
    stats["fid_kid_vs_real"] = compare(real_feats, fake_feats[chosen], **kw)
    return x_sel, y_sel, stats


def save_round(out_dir: str | Path, payload: dict[str, Any], x: np.ndarray, y: np.ndarray) -> None:
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        save_checkpoint(tmp / "gan.pt", payload)
        with (tmp / "selected.npz").open("wb") as f:
            np.savez_compressed(f, x=np.ascontiguousarray(x), y=np.asarray(y, np.int64))
