"""The ``rl`` selection strategy's policy: a network learns which synthetic images to keep.

One *episode*: draw ``candidates_per_episode`` pool images at random; the policy sees each image
and its intended label and keeps or drops it (a Bernoulli draw of its keep probability); a small
*child* classifier is trained on the real train set plus the kept images and scored on the real
validation set. The reward is +1 if that accuracy beats the mean of the previous ``history``
episodes' accuracies and -1 otherwise (see :func:`episode_reward`), and the policy is updated by
advantage actor-critic (see :func:`actor_critic_loss`).

After training, the policy scores every pool image (its keep probability) and the selection is the
top-K per class by that score (see :func:`top_k_per_class`): K per class is respected exactly, as
for the other strategies, short only where a class has fewer than K pool images.

Design choices:

- Critic: one network. Three conv layers and a shared hidden FC layer (batch-normalised over the
  episode's candidates, see :class:`PolicyNet`) form the body; the last FC layer has two outputs,
  the keep logit (actor) and the state value (critic). The value of an image is the reward the
  policy expects for an episode it appears in; the advantage of each decision is
  ``reward - value``, a per-image baseline against the single, episode-level reward.
- Reward: "higher" means above the mean of the last ``history`` accuracies by more than 1e-9
  (float noise of the mean is no gain); a tie is -1. The first episode has no earlier accuracy:
  its reward is 0 and the policy is not updated; its accuracy only starts the history.
- Child: a ``small_cnn`` trained for a *fixed number of steps* (``child_steps`` batches drawn with
  replacement from real + kept), whatever the number of kept images: with a fixed number of
  epochs, keeping more images (even pure noise) buys the child more updates and a higher
  accuracy, and the policy would learn "keep everything". Every episode's child starts from the
  same seed (weights, dropout, batch draws), so accuracy differences between episodes come from
  the kept images and not from the child's own randomness.
- Final scores: the policy in eval mode (batch norm with its running statistics), so an image's
  keep probability does not depend on the batch it is scored in.
- Randomness: one numpy Generator (candidate draws, the child's real/val subsets) and one CPU
  ``torch.Generator`` (keep/drop draws), both from ``cfg.seed``; the policy's initial weights come
  from ``torch.manual_seed(cfg.seed)``. Same inputs, same bits on the CPU.
- Cost: ``episodes`` x (one child of ``child_steps`` batches + one validation pass) + one pass
  over the pool. About 25 s with the defaults on the bundled digits (2 CPU cores).

``cfg`` is the strategy's :class:`ganaug.selection.rl.RlConfig`, which imports this module when
rl runs; this module does not import it back (no import cycle).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ganaug.inference import to_model_range
from ganaug.models import CLASSIFIERS
from ganaug.runtime import generator
from ganaug.training import accuracy

log = logging.getLogger(__name__)

# Accuracies are fractions of a finite validation set; a float mean of equal values can differ from
# them in the last bit, and that is not an improvement.
_TIE_TOLERANCE = 1e-9


# --------------------------------------------------------------------------------------------
# The policy network
# --------------------------------------------------------------------------------------------


class PolicyNet(nn.Module):
    """Three conv layers, then two FC layers over the image features and the one-hot label.

    Takes images ``(N, C, H, W)`` in [-1, 1] and intended labels ``(N,)`` int64; returns
    ``(keep_logit (N,), value (N,))``. The two outputs share every layer but the last one's weights.
    """

    def __init__(self, in_channels: int, image_size: int, num_classes: int, width: int = 16) -> None:
        super().__init__()
        self.num_classes = num_classes
        # Two 2x poolings where the image allows it (8x8 -> 2x2, 48x48 -> 12x12), then a fixed
        # 2x2 grid so the FC size does not depend on the image size.
        pools = [image_size >= 4, image_size >= 8]
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(2) if pools[0] else nn.Identity(),
            nn.Conv2d(width, width * 2, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(2) if pools[1] else nn.Identity(),
            nn.Conv2d(width * 2, width * 4, 3, padding=1), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),  # (N, 16*width)
        )
        hidden = width * 8
        self.fc1 = nn.Linear(width * 16 + num_classes, hidden)
        # Batch norm centres the hidden features over an episode's candidates: the one reward
        # of an episode multiplies every decision's gradient, and without centring its large
        # shared part drives the keep rate of all images up and down while the part that tells
        # images apart barely moves.
        self.norm = nn.BatchNorm1d(hidden)
        self.fc2 = nn.Linear(hidden, 2)  # column 0: keep logit (actor); column 1: value (critic)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        onehot = F.one_hot(y, self.num_classes).to(x.dtype)  # (N, num_classes)
        h = torch.cat([self.body(x), onehot], dim=1)  # (N, 16*width + num_classes)
        out = self.fc2(F.relu(self.norm(self.fc1(h))))  # (N, 2)
        return out[:, 0], out[:, 1]


# --------------------------------------------------------------------------------------------
# Pure pieces: reward, loss, final top-K
# --------------------------------------------------------------------------------------------


def episode_reward(accuracy: float, previous: Sequence[float], history: int = 5) -> float:
    """+1 if ``accuracy`` beats the mean of the last ``history`` entries of ``previous``, else -1.

    A tie is -1 (no improvement). With no previous episode the reward is 0 (nothing to compare).
    """
    window = list(previous)[-history:]
    if not window:
        return 0.0
    baseline = math.fsum(window) / len(window)
    return 1.0 if accuracy > baseline + _TIE_TOLERANCE else -1.0


def actor_critic_loss(keep_logits: torch.Tensor, actions: torch.Tensor, values: torch.Tensor,
                      reward: float, value_weight: float, entropy_weight: float,
                      ) -> tuple[torch.Tensor, dict[str, float]]:
    """Advantage actor-critic loss of one episode of keep/drop decisions, averaged over images.

    ``keep_logits``, ``values``: ``(N,)`` from the policy; ``actions``: ``(N,)`` in {0, 1} (1 =
    keep); ``reward``: the episode's reward, shared by all its decisions.

    - policy: ``-mean(A_i * log pi(a_i | s_i))`` with ``A_i = reward - value_i`` (value detached)
    - value: ``mean((value_i - reward)^2)``
    - entropy: ``mean(H(Bernoulli(sigmoid(logit_i))))``, a bonus (subtracted)

    Returns ``(policy + value_weight * value - entropy_weight * entropy, parts)``.
    """
    actions = actions.to(keep_logits.dtype)
    # log pi(a | s) of a Bernoulli with logit l: -BCE(l, a).
    log_prob = -F.binary_cross_entropy_with_logits(keep_logits, actions, reduction="none")
    advantage = reward - values.detach()
    policy_loss = -(advantage * log_prob).mean()
    value_loss = (values - reward).pow(2).mean()
    # H(p) = -p log p - (1 - p) log(1 - p) with p = sigmoid(l), log p = -softplus(-l).
    p = torch.sigmoid(keep_logits)
    entropy = (p * F.softplus(-keep_logits) + (1 - p) * F.softplus(keep_logits)).mean()
    total = policy_loss + value_weight * value_loss - entropy_weight * entropy
    parts = {"policy_loss": policy_loss.item(), "value_loss": value_loss.item(),
             "entropy": entropy.item(), "advantage": advantage.mean().item()}
    return total, parts


def top_k_per_class(scores: np.ndarray, labels: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Sorted indices of the ``k[c]`` highest ``scores`` among images labelled ``c``, every class.

    Ties go to the lower index. A class with fewer than ``k[c]`` images gives all of them.
    """
    scores, labels = np.asarray(scores), np.asarray(labels)
    chosen = []
    for c, kc in enumerate(np.asarray(k, np.int64)):
        members = np.flatnonzero(labels == c)
        order = np.lexsort((members, -scores[members]))
        chosen.append(members[order[: int(kc)]])
    return np.sort(np.concatenate(chosen)).astype(np.int64) if chosen else np.zeros(0, np.int64)


# --------------------------------------------------------------------------------------------
# Training the policy, scoring the pool
# --------------------------------------------------------------------------------------------


def select_rl(pool_images: np.ndarray, pool_labels: np.ndarray, k: np.ndarray,
              x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
              num_classes: int, cfg: Any, device: torch.device,
              ) -> tuple[np.ndarray, dict[str, Any]]:
    """Train a keep/drop policy on the pool, then take the top-K per class by keep probability.

    ``pool_images``: uint8 ``(N, C, H, W)`` in [0, 255], typically a memmap (read a batch at a
    time); ``pool_labels``: int64 ``(N,)`` intended labels; ``k``: int64 ``(num_classes,)``
    images wanted per class; real arrays: uint8 images and int64 labels as in the prepared data.

    Returns sorted int64 pool indices and a JSON-ready dict: the training curve (per episode:
    reward, child accuracy, keep rate) and keep-probability summaries.
    """
    k = np.asarray(k, np.int64)
    if k.shape != (num_classes,) or (k < 0).any():
        raise ValueError(f"select_rl: k must be {num_classes} counts >= 0, got {k.tolist()}")
    policy, curve = train_policy(pool_images, pool_labels, x_train, y_train, x_val, y_val,
                                 num_classes, cfg, device)
    prob = score_pool(policy, pool_images, pool_labels, cfg.batch_size, device)
    chosen = top_k_per_class(prob, pool_labels, k)
    info = _info(curve, prob, chosen, cfg)
    log.info("rl: %d episodes, child accuracy %.3f -> %.3f (mean of the last %d), mean keep "
             "probability %.3f (pool) vs %.3f (chosen)", cfg.episodes, info["first_accuracy"],
             info["last_accuracy_mean"], cfg.history, info["keep_prob_mean"],
             info["keep_prob_chosen_mean"] or 0.0)
    return chosen, info


def train_policy(pool_images: np.ndarray, pool_labels: np.ndarray,
                 x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                 num_classes: int, cfg: Any, device: torch.device,
                 ) -> tuple[PolicyNet, dict[str, list[float]]]:
    """Run ``cfg.episodes`` episodes of act / evaluate / learn; arrays as in :func:`select_rl`.

    Returns the trained policy and the curve: per episode, ``reward``, child ``accuracy`` and
    ``keep_rate`` (fraction of the candidates kept).
    """
    pool_labels = np.asarray(pool_labels, np.int64)
    _check_inputs(pool_images, pool_labels, x_train, x_val, num_classes)
    rng = np.random.default_rng(cfg.seed)
    g = generator(cfg.seed)  # keep/drop draws, on the CPU whatever the device
    x_real, y_real = _subsample(x_train, y_train, cfg.child_real_per_class, num_classes, rng)
    xv, yv = _subsample(x_val, y_val, cfg.child_val_per_class, num_classes, rng)
    xv_t, yv_t = torch.from_numpy(xv).to(device), torch.from_numpy(yv).to(device)

    torch.manual_seed(cfg.seed)
    c, h, _ = pool_images.shape[1:]
    policy = PolicyNet(int(c), int(h), num_classes, cfg.policy_width).to(device)
    opt = torch.optim.Adam(policy.parameters(), lr=cfg.policy_lr)
    n_cand = min(cfg.candidates_per_episode, len(pool_labels))
    curve: dict[str, list[float]] = {"reward": [], "accuracy": [], "keep_rate": []}
    for _ in tqdm(range(cfg.episodes), desc="rl", unit="episode", leave=False, disable=None):
        idx = np.sort(rng.choice(len(pool_labels), n_cand, replace=False))  # sorted: memmap reads
        xc, yc = np.asarray(pool_images[idx]), pool_labels[idx]
        # (1) Act: keep or drop each candidate.
        policy.train()
        logits, values = policy(_model_input(xc, device), torch.from_numpy(yc).to(device))
        keep = torch.bernoulli(torch.sigmoid(logits.detach()).cpu(), generator=g)  # (n_cand,)
        kept = keep.numpy().astype(bool)
        # (2) Evaluate: a child trained on real + kept images, scored on the validation set.
        acc = child_accuracy(np.concatenate([x_real, xc[kept]]), np.concatenate([y_real, yc[kept]]),
                             xv_t, yv_t, num_classes, cfg, device)
        reward = episode_reward(acc, curve["accuracy"], cfg.history)
        # (3) Learn: advantage actor-critic step (none for the first episode: no reward yet).
        if curve["accuracy"]:
            loss, _ = actor_critic_loss(logits, keep.to(device), values, reward,
                                        cfg.value_weight, cfg.entropy_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        curve["reward"].append(reward)
        curve["accuracy"].append(float(acc))
        curve["keep_rate"].append(float(kept.mean()))
    return policy, curve


def child_accuracy(x: np.ndarray, y: np.ndarray, xv: torch.Tensor, yv: torch.Tensor,
                   num_classes: int, cfg: Any, device: torch.device) -> float:
    """Validation accuracy of a ``small_cnn`` trained ``cfg.child_steps`` batches on ``(x, y)``.

    ``x``: uint8 ``(N, C, H, W)``; ``xv``, ``yv``: the validation set, already on ``device``. The
    same seed every call: equal inputs give equal accuracies.
    """
    c, h, _ = x.shape[1:]
    torch.manual_seed(cfg.seed)  # initial weights and dropout masks
    model = CLASSIFIERS.get("small_cnn")(in_channels=int(c), num_classes=num_classes,
                                         image_size=int(h), width=cfg.child_width).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.child_lr)
    g = generator(cfg.seed)
    xt = torch.from_numpy(x).to(device)  # uint8 (N, C, H, W)
    yt = torch.from_numpy(y).to(device)
    model.train()
    for _ in range(cfg.child_steps):
        idx = torch.randint(0, len(yt), (cfg.batch_size,), generator=g).to(device)
        loss = F.cross_entropy(model(to_model_range(xt[idx])), yt[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return accuracy(model, xv, yv, cfg.batch_size)


@torch.no_grad()
def score_pool(policy: PolicyNet, pool_images: np.ndarray, pool_labels: np.ndarray,
               batch_size: int, device: torch.device) -> np.ndarray:
    """Keep probability ``(N,)`` float64 of every pool image, reading one batch at a time."""
    from ganaug.inference import RELEASE_EVERY, release_pages

    policy.eval()
    out = []
    for i, start in enumerate(range(0, len(pool_labels), batch_size)):
        if i % RELEASE_EVERY == RELEASE_EVERY - 1:
            release_pages(pool_images)
        xb = np.asarray(pool_images[start: start + batch_size])
        yb = torch.from_numpy(np.array(pool_labels[start: start + batch_size], np.int64))
        logits, _ = policy(_model_input(xb, device), yb.to(device))
        out.append(torch.sigmoid(logits).cpu().double().numpy())  # MPS has no float64
    return np.concatenate(out) if out else np.zeros(0)


def _model_input(x: np.ndarray, device: torch.device) -> torch.Tensor:
    # A copy: slices of a read-only memmap cannot back a tensor.
    return to_model_range(torch.from_numpy(np.array(x)).to(device))  # (B, C, H, W)


def _subsample(x: np.ndarray, y: np.ndarray, per_class: int | None, num_classes: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """At most ``per_class`` images of each class, in their original order (None: all)."""
    y = np.asarray(y, np.int64)
    if per_class is None:
        return np.asarray(x), y
    keep = []
    for c in range(num_classes):
        members = np.flatnonzero(y == c)
        take = min(per_class, len(members))
        keep.append(rng.choice(members, take, replace=False) if take < len(members) else members)
    idx = np.sort(np.concatenate(keep))
    return np.asarray(x)[idx], y[idx]


def _check_inputs(pool_images: np.ndarray, pool_labels: np.ndarray, x_train: np.ndarray,
                  x_val: np.ndarray, num_classes: int) -> None:
    if pool_images.dtype != np.uint8 or pool_images.ndim != 4:
        raise ValueError(f"select_rl: pool images must be uint8 (N, C, H, W), got "
                         f"{pool_images.dtype} {pool_images.shape}")
    if len(pool_images) != len(pool_labels):
        raise ValueError(f"select_rl: {len(pool_images)} pool images for {len(pool_labels)} labels")
    if len(pool_labels) < 2:
        raise ValueError(f"select_rl: the pool needs at least 2 images, got {len(pool_labels)}")
    if pool_labels.min() < 0 or pool_labels.max() >= num_classes:
        raise ValueError(f"select_rl: pool labels must be in [0, {num_classes})")
    for name, x in (("x_train", x_train), ("x_val", x_val)):
        if x.dtype != np.uint8 or x.shape[1:] != pool_images.shape[1:] or len(x) == 0:
            raise ValueError(f"select_rl: {name} must be non-empty uint8 images of shape "
                             f"{pool_images.shape[1:]}, got {x.dtype} {x.shape}")


def _info(curve: dict[str, list[float]], prob: np.ndarray, chosen: np.ndarray,
          cfg: Any) -> dict[str, Any]:
    acc = curve["accuracy"]
    tail = acc[-cfg.history:]
    return {
        "episodes": cfg.episodes,
        "curve": curve,
        "first_accuracy": acc[0],
        "last_accuracy_mean": math.fsum(tail) / len(tail),
        "mean_reward": math.fsum(curve["reward"]) / len(curve["reward"]),
        "keep_prob_mean": float(prob.mean()),
        "keep_prob_chosen_mean": float(prob[chosen].mean()) if len(chosen) else None,
    }
