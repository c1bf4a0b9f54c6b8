"""Iterative refinement: a round fine-tunes a GAN on the real images plus the synthetic images
selected from it, then generates, scores and selects again (one published FER2013 study).

A round reuses the main pipeline's library functions, not copies of them: the pool is made by
:func:`ganaug.synthetic.pool.make_pool`, scored by :func:`ganaug.synthetic.scoring.run_score` and selected by
:func:`ganaug.selection.choose`, with the same params, seeds and feature spaces, so a round's
figures compare with the main pipeline's.

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

from ganaug.checkpoints import save_checkpoint
from ganaug.configs.gan import GanConfig
from ganaug.configs.generate import GenerateConfig
from ganaug.configs.refine import RefineConfig
from ganaug.configs.score import ScoreConfig
from ganaug.data import Prepared
from ganaug.gan.family import LoadedGan
from ganaug.gan.train import GanResult, train_gan
from ganaug.io import atomic_path
from ganaug.metrics.fid import compare
from ganaug.selection import Candidates, choose
from ganaug.synthetic.pool import load_pool, load_sources, make_pool, pool_size_per_class
from ganaug.synthetic.scoring import chosen_vs_real, kid_settings, run_score


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


def generate_score_select(gan: LoadedGan, scorer: Any, data: Prepared, cfg: RefineConfig,
                          select_cfg: Any, generate_cfg: GenerateConfig, score_cfg: ScoreConfig,
                          device: torch.device, temperature: float = 1.0
                          ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """A fresh pool from ``gan`` (in a temporary directory), scored and selected exactly as the
    main pipeline does; returns the selected images, their labels and stats (FID/KID of the pool
    and of the selection against the real images, in the scorer's space)."""
    counts = data.class_counts("train")
    per_class = pool_size_per_class(counts, generate_cfg.pool_multiplier, cfg.ratio)
    with tempfile.TemporaryDirectory(prefix="ganaug-refine-") as tmp:
        pool_dir = Path(tmp) / "pool"
        make_pool(gan, data, per_class, generate_cfg.batch_size, generate_cfg.seed, device,
                  pool_dir, {"refine": True})
        images, labels, _ = load_pool(pool_dir)
        scored = run_score(images, labels, load_sources(pool_dir, len(labels)), scorer, gan,
                           data, score_cfg, device, temperature)
        scores = scored.scores
        candidates = Candidates(scores=scores.table, features=scores.pool_features,
                                images=images, real=data, device=device, classes=data.classes)
        chosen, stats = choose(candidates, counts, cfg.ratio, cfg.strategy, select_cfg)
        x_sel, y_sel = np.asarray(images[chosen]), labels[chosen]
    stats["fid_kid_pool"] = compare(scores.real_features, scores.pool_features,
                                    feature_space="scorer", **kid_settings(score_cfg))
    stats["fid_kid_vs_real"] = chosen_vs_real(scores, chosen, score_cfg)
    stats["memorisation"] = scored.metrics["memorisation"]
    return x_sel, y_sel, stats


def save_round(out_dir: str | Path, payload: dict[str, Any], x: np.ndarray, y: np.ndarray) -> None:
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        save_checkpoint(tmp / "gan.pt", payload)
        with (tmp / "selected.npz").open("wb") as f:
            np.savez_compressed(f, x=np.ascontiguousarray(x), y=np.asarray(y, np.int64))
