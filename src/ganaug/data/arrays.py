"""Bring image and label arrays from other formats into the prepared format's conventions."""

from __future__ import annotations

from typing import Literal

import numpy as np

from ganaug.io import DataFileError

Layout = Literal["auto", "NHW", "NHWC", "NCHW"]
CHANNELS = (1, 3)


def to_nchw_uint8(x: np.ndarray, layout: Layout, where: str) -> tuple[np.ndarray, dict]:
    """Images ``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)`` -> uint8 ``(N, C, H, W)``.

    uint8 is kept; other integer types must hold values in [0, 255]; floats must lie in [0, 1] and
    are scaled by 255 and rounded. ``C`` must be 1 or 3. ``layout="auto"`` reads a 4-D array as
    channels-last when only the last axis has 1 or 3 entries, channels-first when only axis 1 has.
    Returns the images and what was done (for the prepared file's meta). Errors name ``where``.
    """
    layout = _resolve_layout(x.shape, layout, where)
    if layout == "NHW":
        x = x[:, None]
    elif layout == "NHWC":
        x = np.moveaxis(x, -1, 1)
    if x.shape[1] not in CHANNELS:
        raise DataFileError(f"{where}: images must have 1 or 3 channels, got shape {x.shape} "
                            f"read as (N, C, H, W)")
    info = {"source_layout": layout, "source_dtype": str(x.dtype)}
    return np.ascontiguousarray(_to_uint8(x, where)), info


def _resolve_layout(shape: tuple[int, ...], layout: Layout, where: str) -> str:
    expected = {"NHW": 3, "NHWC": 4, "NCHW": 4}
    if layout != "auto":
        if len(shape) != expected[layout]:
            raise DataFileError(f"{where}: layout {layout} needs a {expected[layout]}-D array, "
                                f"got shape {shape}")
        return layout
    if len(shape) == 3:
        return "NHW"
    if len(shape) == 4:
        last, first = shape[3] in CHANNELS, shape[1] in CHANNELS
        if last != first:
            return "NHWC" if last else "NCHW"
        raise DataFileError(f"{where}: cannot tell the channel axis of images of shape {shape}; "
                            f"set layout: NHWC or NCHW")
    raise DataFileError(f"{where}: images must be 3-D (N, H, W) or 4-D, got shape {shape}")


def _to_uint8(x: np.ndarray, where: str) -> np.ndarray:
    if x.dtype == np.uint8:
        return x
    if x.size == 0:
        return x.astype(np.uint8)
    lo, hi = x.min(), x.max()
    if np.issubdtype(x.dtype, np.floating):
        if not (np.isfinite(lo) and np.isfinite(hi) and lo >= 0 and hi <= 1):
            raise DataFileError(f"{where}: float images must lie in [0, 1], got [{lo}, {hi}]")
        return np.rint(x * 255.0).astype(np.uint8)
    if np.issubdtype(x.dtype, np.integer):
        if lo < 0 or hi > 255:
            raise DataFileError(f"{where}: integer images must lie in [0, 255], got [{lo}, {hi}]")
        return x.astype(np.uint8)
    raise DataFileError(f"{where}: images must be uint8, integer or float, got {x.dtype}")


def to_labels(y: np.ndarray, num_classes: int, where: str) -> np.ndarray:
    """Integer labels ``(N,)`` (or ``(N, 1)``) in [0, num_classes) -> int64 ``(N,)``.

    Errors name ``where`` and the first offending position.
    """
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DataFileError(f"{where}: labels must be a 1-D integer array, got {y.dtype} {y.shape}")
    bad = np.flatnonzero((y < 0) | (y >= num_classes))
    if len(bad):
        i = int(bad[0])
        raise DataFileError(f"{where}: label {int(y[i])} at index {i} is outside 0..{num_classes - 1} "
                            f"({len(bad)} such labels)")
    return y.astype(np.int64)
