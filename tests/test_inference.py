"""Image range conversions and the random-shift augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ganaug.inference import (
    CPU_BATCH_PIXELS,
    batched,
    inference_batch,
    random_shift,
    to_model_range,
    to_uint8,
)
from ganaug.runtime import generator


def test_to_model_range_maps_0_255_to_minus_1_1():
    x = torch.tensor([0, 255, 51], dtype=torch.uint8)
    out = to_model_range(x)
    assert out.dtype == torch.float32
    assert out.tolist() == pytest.approx([-1.0, 1.0, 51 / 127.5 - 1])


def test_uint8_round_trip_is_exact_for_every_value():
    x = torch.arange(256, dtype=torch.uint8).view(4, 1, 8, 8)
    back = to_uint8(to_model_range(x))
    assert back.dtype == torch.uint8 and back.shape == x.shape
    assert torch.equal(back, x)
    assert torch.equal(x, torch.arange(256, dtype=torch.uint8).view(4, 1, 8, 8))  # input untouched


def test_to_uint8_clips_and_rounds():
    x = torch.tensor([-3.0, -1.0, 1.0, 7.0, 0.5 / 127.5 * 0.9 - 1])
    assert to_uint8(x).tolist() == [0, 0, 255, 255, 0]  # 0.45 rounds down to 0
    assert to_uint8(torch.tensor([1.4 / 127.5 - 1])).item() == 1


def shifted(x: torch.Tensor, s: int, dy: int, dx: int) -> torch.Tensor:
    """``x`` (C, H, W) moved by (dy - s, dx - s) pixels, -1 filling what comes in."""
    _, h, w = x.shape
    return F.pad(x, (s,) * 4, value=-1.0)[:, dy: dy + h, dx: dx + w]


def test_random_shift_of_zero_is_identity():
    x = torch.rand(3, 1, 5, 5) * 2 - 1
    out = random_shift(x, 0, generator(0))
    assert torch.equal(out, x)


def test_random_shift_moves_each_image_within_max_shift_with_background_fill():
    torch.manual_seed(0)
    x = torch.rand(16, 2, 6, 7) * 2 - 1  # non-square, two channels
    s = 2
    out = random_shift(x, s, generator(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    moved = 0
    for i in range(len(x)):
        matches = [(dy, dx) for dy in range(2 * s + 1) for dx in range(2 * s + 1)
                   if torch.equal(out[i], shifted(x[i], s, dy, dx))]
        assert matches, f"image {i} is not a shift of its input by at most {s} pixels"
        moved += matches[0] != (s, s)
    assert moved > 8  # 24 of 25 offsets move the image
    assert out.min() >= -1 and out.max() <= 1


def test_random_shift_is_reproducible_for_a_seed():
    x = torch.rand(8, 1, 8, 8) * 2 - 1
    a = random_shift(x, 1, generator(5))
    b = random_shift(x, 1, generator(5))
    c = random_shift(x, 1, generator(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_batched_applies_fn_in_model_range_and_concatenates():
    x = np.arange(10 * 4, dtype=np.uint8).reshape(10, 1, 2, 2) * 6
    seen = []

    def fn(t):
        seen.append(len(t))
        assert t.dtype == torch.float32 and t.min() >= -1 and t.max() <= 1
        return t.flatten(1).mean(1, keepdim=True)

    out = batched(fn, x, batch_size=4, device=torch.device("cpu"))
    assert seen == [4, 4, 2]
    expected = (x.reshape(10, -1).astype(np.float64) / 127.5 - 1).mean(1, keepdims=True)
    assert np.allclose(out.numpy(), expected, atol=1e-6)
    with pytest.raises(ValueError, match="no images"):
        batched(fn, x[:0], batch_size=4, device=torch.device("cpu"))


def test_batched_fills_one_output_per_result_of_a_tuple():
    x = np.arange(10 * 4, dtype=np.uint8).reshape(10, 1, 2, 2)

    def fn(t):
        return t.flatten(1), t.flatten(1).sum(1).to(torch.float64)

    flat, total = batched(fn, x, batch_size=3, device=torch.device("cpu"))
    assert flat.shape == (10, 4) and total.shape == (10,) and total.dtype == torch.float32
    assert torch.equal(flat, batched(lambda t: t.flatten(1), x, 3, torch.device("cpu")))
    assert torch.allclose(total, flat.sum(1))


def test_inference_batch_caps_cpu_batches_by_pixels_and_leaves_accelerators_alone():
    cpu = torch.device("cpu")
    assert CPU_BATCH_PIXELS == 64 * 48 * 48
    assert inference_batch(1024, cpu, (1, 48, 48)) == 64
    assert inference_batch(1024, "cpu", (3, 48, 48)) == 64  # channels do not count
    assert inference_batch(1024, cpu, (1, 8, 8)) == 1024  # the default study: unchanged
    assert inference_batch(40, cpu, (1, 48, 48)) == 40  # never more than asked for
    assert inference_batch(1024, cpu, (3, 224, 224)) == CPU_BATCH_PIXELS // 224 ** 2
    assert inference_batch(1024, cpu, (1, 2000, 2000)) == 1  # at least one image
    assert inference_batch(1024, torch.device("cuda"), (1, 48, 48)) == 1024
    assert inference_batch(1024, "mps", (1, 48, 48)) == 1024
    with pytest.raises(ValueError, match="batch_size must be at least 1, got 0"):
        inference_batch(0, cpu, (1, 8, 8))


def test_batched_on_the_cpu_never_passes_more_than_the_cap():
    """A 1024-image batch of 48x48 images would hold 0.6 GB of activations on the CPU."""
    x = np.random.default_rng(0).integers(0, 256, (150, 1, 48, 48), dtype=np.uint8)
    seen = []

    def fn(t):
        seen.append(len(t))
        return t.flatten(1).sum(1, keepdim=True)

    out = batched(fn, x, batch_size=1024, device=torch.device("cpu"))
    assert seen == [64, 64, 22]
    whole = to_model_range(torch.from_numpy(x)).flatten(1).sum(1, keepdim=True)
    assert torch.equal(out, whole)


def test_batched_passes_each_batch_its_rows_of_the_per_image_arrays():
    x = np.arange(10 * 4, dtype=np.uint8).reshape(10, 1, 2, 2)
    labels = np.arange(10) * 3
    weights = torch.arange(10, dtype=torch.float32) / 10

    def fn(t, y, w):
        assert len(t) == len(y) == len(w)
        return torch.stack([y.float(), w, t.flatten(1)[:, 0]], 1)

    out = batched(fn, x, 4, torch.device("cpu"), labels, weights)
    assert torch.equal(out[:, 0], torch.from_numpy(labels).float())
    assert torch.equal(out[:, 1], weights)
    assert torch.equal(out[:, 2], to_model_range(torch.from_numpy(x)).flatten(1)[:, 0])
    with pytest.raises(ValueError, match="9 per-image rows for 10 images"):
        batched(fn, x, 4, torch.device("cpu"), labels[:9], weights)
