"""Scarcity: which of a source's training images a study keeps, and the seeded per-class order
of all of them that the real-only learning curve reads (train split first, then the reserve).

Light on purpose (numpy only): ``prepare`` draws the prepared train split with these, and the
``subset`` stage draws each replicate's own real subset from the prepared file with them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ORDER_STREAM", "nested_order", "scarce_subset"]


# The seed-sequence key of the learning curve's order, beside data.seed.
ORDER_STREAM = 1


def nested_order(y: np.ndarray, every_train: np.ndarray, kept: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A seeded order of each class's training images that starts with the scarce train split.

    ``every_train``: indices of all training images; ``kept`` (sorted): those scarcity kept.
    Within a class of n_c kept images, the kept ones get ranks 0..n_c-1 in a random order and
    the left-out ones ranks n_c, n_c+1, ... in a random order. Returns ``(reserve indices in
    rank order per class, their ranks, the ranks of ``kept`` in its order)``.
    """
    train_rank = np.empty(len(kept), dtype=np.int64)
    reserve_idx, reserve_rank = [], []
    left_out = np.setdiff1d(every_train, kept)
    for c in np.unique(y[every_train]):
        in_class = np.flatnonzero(y[kept] == c)
        train_rank[in_class] = rng.permutation(len(in_class))
        rest = rng.permutation(left_out[y[left_out] == c])
        reserve_idx.append(rest)
        reserve_rank.append(len(in_class) + np.arange(len(rest), dtype=np.int64))
    if not reserve_idx:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), train_rank
    return np.concatenate(reserve_idx), np.concatenate(reserve_rank), train_rank


def scarce_subset(y: np.ndarray, idx: np.ndarray, per_class: int | None,
                  fraction: float | None, rng: np.random.Generator,
                  groups: np.ndarray | None = None) -> np.ndarray:
    """Keep at most ``per_class`` (or ``fraction`` of each class) of ``idx``, chosen at random.

    With ``groups``, a class's images are drawn from as many groups as possible: one image of each
    group (groups in random order), then a second image of each, and so on. Ten images of a class
    are then ten subjects, not ten frames of two sequences.
    """
    if per_class is None and fraction is None:
        return idx
    keep = []
    for c in np.unique(y[idx]):
        members = idx[y[idx] == c]
        n = per_class if per_class is not None else max(1, int(round(len(members) * fraction)))
        if n < len(members):
            if groups is None:
                members = rng.choice(members, size=n, replace=False)
            else:
                members = _spread_over_groups(members, groups, n, rng)
        keep.append(members)
    return np.sort(np.concatenate(keep))


def _spread_over_groups(members: np.ndarray, groups: np.ndarray, n: int,
                        rng: np.random.Generator) -> np.ndarray:
    """``n`` of ``members``: round-robin over their groups, in a random order of images."""
    shuffled = rng.permutation(members)
    _, inv = np.unique(groups[shuffled], return_inverse=True)
    by_group = np.argsort(inv, kind="stable")  # positions in shuffled, grouped, order kept
    sorted_inv = inv[by_group]
    starts = np.flatnonzero(np.r_[True, sorted_inv[1:] != sorted_inv[:-1]])
    first_of = np.repeat(starts, np.diff(np.r_[starts, len(inv)]))
    rank = np.empty(len(inv), dtype=np.int64)
    rank[by_group] = np.arange(len(inv)) - first_of  # 0 for a group's first image, 1 next, ...
    return shuffled[np.argsort(rank, kind="stable")[:n]]
