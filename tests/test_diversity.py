"""The pool's spread check: how much synthetic images vary within a class, next to real ones, and
the report's warning when a GAN collapsed (the same image whatever the noise)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ganaug.report.markdown import _pool_section
from ganaug.synthetic.scoring import COLLAPSE_RATIO, pixel_diversity


def test_spread_by_hand():
    # Real class 0: one black and one white 1x2 image -> every pixel has std 0.5 (population).
    # Synthetic class 0: a black and a mid-grey (value 51 = 0.2) image -> std 0.1 per pixel.
    real = np.array([[[0, 0]], [[255, 255]]], dtype=np.uint8)
    fake = np.array([[[0, 0]], [[51, 51]]], dtype=np.uint8)
    out = pixel_diversity(real, np.array([0, 0]), fake, np.array([0, 0]), ["a"])
    row = out["per_class"]["a"]
    assert row["real"] == pytest.approx(0.5)
    assert row["synthetic"] == pytest.approx(0.1)
    assert row["ratio"] == pytest.approx(0.2)
    assert out["collapsed"] == ["a"]


def test_chunking_does_not_change_the_result():
    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (50, 1, 4, 4), dtype=np.uint8)
    fake = rng.integers(0, 256, (301, 1, 4, 4), dtype=np.uint8)
    y_real, y_fake = np.arange(50) % 2, np.arange(301) % 2
    whole = pixel_diversity(real, y_real, fake, y_fake, ["a", "b"], chunk=10_000)
    chunked = pixel_diversity(real, y_real, fake, y_fake, ["a", "b"], chunk=7)
    for name in ("a", "b"):
        expect = (fake[y_fake == (name == "b")] / 255.0).reshape(-1, 16).std(axis=0).mean()
        assert whole["per_class"][name]["synthetic"] == pytest.approx(expect)
        assert chunked["per_class"][name]["synthetic"] == pytest.approx(expect)
    assert whole["collapsed"] == []  # uniform noise varies as much as uniform noise


def test_collapsed_class_is_flagged_and_healthy_one_is_not():
    rng = np.random.default_rng(1)
    real = rng.integers(0, 256, (40, 1, 8, 8), dtype=np.uint8)
    y_real = np.arange(40) % 2
    same = np.repeat(real[:1], 30, axis=0)                    # class 0: one image, 30 times
    varied = rng.integers(0, 256, (30, 1, 8, 8), dtype=np.uint8)  # class 1: as varied as real
    fake = np.concatenate([same, varied])
    y_fake = np.repeat([0, 1], 30)
    out = pixel_diversity(real, y_real, fake, y_fake, ["collapsed", "fine"])
    assert out["per_class"]["collapsed"]["ratio"] == pytest.approx(0.0, abs=1e-6)
    assert out["per_class"]["fine"]["ratio"] > COLLAPSE_RATIO
    assert out["collapsed"] == ["collapsed"]


def test_a_class_with_fewer_than_two_images_has_no_spread():
    real = np.zeros((3, 1, 2, 2), dtype=np.uint8)
    out = pixel_diversity(real, np.array([0, 0, 1]), real[:1], np.array([0]), ["a", "b"])
    assert out["per_class"]["b"]["real"] is None and out["per_class"]["b"]["ratio"] is None
    assert out["per_class"]["a"]["synthetic"] is None and out["per_class"]["a"]["ratio"] is None
    assert out["mean_ratio"] is None
    assert out["collapsed"] == []  # unknown is not reported as collapsed
    json.dumps(out, allow_nan=False)  # metrics/score.json is written strictly


def _score(diversity: dict) -> dict:
    fk = {"fid": 1.0, "kid": 0.0, "kid_std": 0.0, "n_real": 2, "n_fake": 2,
          "feature_space": "scorer", "feature_dim": 4}
    return {"fid_kid": {"overall": fk, "per_class": {"a": fk, "b": fk}},
            "scores": {"per_class": {"a": {"agreement": 1.0}, "b": {"agreement": 0.5}}},
            "diversity": diversity}


class _Study:
    strategies: list[str] = []
    ratios: list[float] = []


def test_report_shows_spread_and_warns_only_on_collapse():
    healthy = {"per_class": {"a": {"ratio": 0.9}, "b": {"ratio": 0.8}}, "collapsed": [],
               "collapse_threshold": COLLAPSE_RATIO}
    text = "\n".join(_pool_section(_score(healthy), {}, _Study()))
    assert "| a | 1.00 | 0.0000 | 2 | 2 | 1.00 | 0.90 |" in text
    assert "Warning" not in text
    collapsed = {"per_class": {"a": {"ratio": 0.9}, "b": {"ratio": 0.05}}, "collapsed": ["b"],
                 "collapse_threshold": COLLAPSE_RATIO}
    text = "\n".join(_pool_section(_score(collapsed), {}, _Study()))
    assert "**Warning:** in b the synthetic images vary less than 50% as much" in text
