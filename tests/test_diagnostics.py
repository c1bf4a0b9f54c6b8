"""Generator diagnostics: precision/recall/density/coverage and the nearest-neighbour copy check,
on point clouds small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pytest

from ganaug.metrics.diagnostics import (
    COPY_FLAG_RATIO,
    copy_share_estimate,
    kth_neighbour_radius,
    nn_copy_heuristic,
    prdc,
    prdc_report,
)


def col(*values: float) -> np.ndarray:
    """1-D points as an ``(N, 1)`` feature array."""
    return np.asarray(values, np.float64)[:, None]


# --------------------------------------------------------------------------------------------
# PRDC
# --------------------------------------------------------------------------------------------


def test_kth_neighbour_radius_excludes_the_point_itself():
    x = col(0, 1, 3, 7)
    assert kth_neighbour_radius(x, 1).tolist() == [1, 1, 2, 4]
    assert kth_neighbour_radius(x, 2).tolist() == [3, 2, 3, 6]
    # A duplicate is a neighbour at distance 0 (the point itself is not).
    assert kth_neighbour_radius(col(2, 2, 5), 1).tolist() == [0, 0, 3]


def test_prdc_by_hand_in_one_dimension():
    # Real 0, 1, 2, 3 (k = 1: every real ball has radius 1). Fake 0.5 and 2 sit on the real
    # data; 10 is an outlier (fake radii: 1.5, 1.5, 8).
    out = prdc(col(0, 1, 2, 3), col(0.5, 2, 10), k=1)
    assert out["precision"] == pytest.approx(2 / 3)  # 0.5 and 2 in a real ball, 10 in none
    # Every real point is in a fake ball; the outlier's radius-8 ball alone holds 2 and 3: recall
    # trusts outliers, which is what coverage is for.
    assert out["recall"] == 1.0
    # Real balls holding each fake: 0.5 -> {0, 1}; 2 -> {1, 2, 3} (1 and 3 exactly on their
    # radius: closed balls); 10 -> none. (2 + 3 + 0) / 3 / k.
    assert out["density"] == pytest.approx(5 / 3)
    # Nearest fake within the real radius: 0 (0.5), 1 (0.5), 2 (0), 3 (1, exactly the radius).
    assert out["coverage"] == 1.0
    assert (out["k"], out["n_real"], out["n_fake"]) == (1, 4, 3)


def test_prdc_by_hand_in_two_dimensions():
    # Real: the unit square's corners; k = 2: each has two neighbours at 1 (radius 1).
    real = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], float)
    # Fake: the centre (sqrt(0.5) from every corner), (2, 0) (1 from (1, 0) only), (5, 5) (far).
    fake = np.array([[0.5, 0.5], [2, 0], [5, 5]], float)
    out = prdc(real, fake, k=2)
    assert out["precision"] == pytest.approx(2 / 3)
    assert out["density"] == pytest.approx((4 + 1 + 0) / 3 / 2)
    assert out["coverage"] == 1.0  # every corner has the centre sqrt(0.5) <= 1 away
    assert out["recall"] == 1.0  # the centre's radius (its 2nd neighbour, (5, 5)) spans the square
    # Drop the centre and add a second far point: (2, 0) alone is near the data.
    out = prdc(real, np.array([[2, 0], [5, 5], [6, 5]], float), k=2)
    assert out["precision"] == pytest.approx(1 / 3)
    assert out["density"] == pytest.approx(1 / 3 / 2)
    # Only (1, 0) has a fake within 1 (the tie at exactly its radius counts).
    assert out["coverage"] == pytest.approx(1 / 4)


def test_exact_copies_of_a_repeated_real_image_are_inside_its_radius_zero_ball():
    # Each real image occurs twice, so k = 1 radii are 0; exact copies are on the manifold
    # (a strict < would put them outside: precision 0 for a perfect copy).
    real = col(1, 1, 4, 4, 9, 9)
    out = prdc(real, col(1, 4, 9), k=1)
    assert out["precision"] == 1.0 and out["coverage"] == 1.0
    assert out["density"] == pytest.approx(2.0)  # each copy sits in two radius-0 balls


def reference_prdc(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    """The formulas of Naeem et al. 2020 written out with loops (closed balls)."""
    def dist(a, b):
        return float(np.linalg.norm(a - b))

    def radius(points, i):
        return sorted(dist(points[i], p) for j, p in enumerate(points) if j != i)[k - 1]

    r_real = [radius(real, i) for i in range(len(real))]
    r_fake = [radius(fake, j) for j in range(len(fake))]
    precision = np.mean([any(dist(f, r) <= r_real[i] for i, r in enumerate(real)) for f in fake])
    recall = np.mean([any(dist(r, f) <= r_fake[j] for j, f in enumerate(fake)) for r in real])
    density = np.mean([sum(dist(f, r) <= r_real[i] for i, r in enumerate(real))
                       for f in fake]) / k
    coverage = np.mean([min(dist(r, f) for f in fake) <= r_real[i]
                        for i, r in enumerate(real)])
    return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}


@pytest.mark.parametrize(("k", "shift", "seed"), [(1, 0.0, 0), (3, 0.5, 1), (5, 2.0, 2)])
def test_prdc_matches_the_reference_formulas(k, shift, seed):
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(40, 3))
    fake = rng.normal(size=(30, 3)) * 1.5 + shift
    out, ref = prdc(real, fake, k), reference_prdc(real, fake, k)
    for key in ("precision", "recall", "density", "coverage"):
        assert out[key] == pytest.approx(ref[key], abs=1e-12), key


def test_prdc_of_a_sample_against_itself_is_perfect():
    x = np.random.default_rng(0).normal(size=(25, 2))
    out = prdc(x, x.copy(), k=3)
    assert out["precision"] == out["recall"] == out["coverage"] == 1.0
    # Each fake is in its own copy's ball and in the balls of the points it is a k-NN of: k
    # per point on average (the k-th on the radius itself, a tie rounding may break).
    assert 1.0 <= out["density"] <= (1 + 3) / 3 + 1e-12


def test_prdc_needs_more_than_k_points_per_side():
    out = prdc(col(0, 1, 2), col(0, 1, 2, 3), k=3)
    assert out["precision"] is None and out["coverage"] is None and out["n_real"] == 3


def test_prdc_report_is_per_class_and_averages_the_classes_it_could_compute():
    real = np.r_[col(0, 1, 2, 3), col(100, 101)]
    fake = np.r_[col(0.5, 2, 10), col(100, 101, 102)]
    rep = prdc_report(real, np.array([0, 0, 0, 0, 1, 1]), fake, np.array([0, 0, 0, 1, 1, 1]),
                      ["a", "b"], k=1)
    assert rep["per_class"]["a"]["precision"] == pytest.approx(2 / 3)
    assert rep["per_class"]["b"]["precision"] == 1.0  # 102 is 1 from 101, whose radius is 1
    assert rep["mean_over_classes"]["precision"] == pytest.approx((2 / 3 + 1) / 2)


# --------------------------------------------------------------------------------------------
# The nearest-neighbour copy heuristic
# --------------------------------------------------------------------------------------------


def clouds(seed: int = 0, classes: int = 2, dim: int = 4):
    """Per class, i.i.d. Gaussian features around a class mean: 60 training, 120 test and 60
    held-out images (the test images are subsampled to 60 per class by the heuristic)."""
    rng = np.random.default_rng(seed)

    def draw(n):
        y = np.repeat(np.arange(classes), n)
        return rng.normal(size=(len(y), dim)) + 6.0 * y[:, None], y

    return draw(60), draw(120), draw(60), draw(150), rng


def run_check(fake, fake_y, seed=0):
    (train, y_train), (test, y_test), (held, y_held), _, _ = clouds(seed)
    return nn_copy_heuristic(fake, fake_y, train, y_train, test, y_test, held, y_held, seed=0)


def test_a_clean_pool_is_not_flagged():
    # Fresh draws from the real distribution copy nothing: about half of them are nearer a test
    # image, like the held-out real images.
    _, _, _, (fresh, y_fresh), _ = clouds()
    summary, per_image = run_check(fresh, y_fresh)
    assert summary["copying"] is False
    assert summary["fraction_closer_to_test"] == pytest.approx(0.5, abs=0.1)
    assert summary["reference_fraction"] == pytest.approx(0.5, abs=0.15)
    assert summary["copy_share_estimate"] < 0.3
    assert (per_image["nn_train_dist"] > 0).all()


@pytest.mark.parametrize("noise", [0.0, 1e-3])
def test_a_pool_of_planted_copies_is_flagged_and_points_at_the_originals(noise):
    # 80 % of the pool are exact (or near) copies of training images, 20 % fresh draws.
    (train, y_train), _, _, (fresh, y_fresh), rng = clouds()
    rows = rng.choice(len(train), 96, replace=False)
    fake = np.r_[train[rows] + noise * rng.normal(size=(96, train.shape[1])), fresh[::12]]
    fake_y = np.r_[y_train[rows], y_fresh[::12]]  # 96 copies, 25 fresh
    summary, per_image = run_check(fake, fake_y)
    assert summary["copying"] is True
    assert summary["fraction_closer_to_test"] < COPY_FLAG_RATIO * summary["reference_fraction"]
    assert summary["copy_share_estimate"] == pytest.approx(0.8, abs=0.1)
    # Each copy's nearest training image is its original, at (about) distance 0.
    assert (per_image["nn_train_index"][:96] == rows).all()
    assert per_image["nn_train_dist"][:96].max() <= 10 * noise + 1e-6


def test_a_minority_of_copies_is_estimated_but_not_flagged():
    # The cut-off flags a majority of copies only (c > 1 - COPY_FLAG_RATIO); a third is not
    # flagged, but copy_share_estimate says about a third.
    (train, y_train), _, _, (fresh, y_fresh), rng = clouds(seed=1)
    rows = rng.choice(len(train), 50, replace=False)
    summary, _ = run_check(np.r_[train[rows], fresh[::3]], np.r_[y_train[rows], y_fresh[::3]],
                           seed=1)
    assert summary["copying"] is False
    assert summary["copy_share_estimate"] == pytest.approx(1 / 3, abs=0.15)


def test_copy_share_estimate_by_hand():
    assert copy_share_estimate(0.25, 0.5) == 0.5   # (1 - c) x 0.5 = 0.25
    assert copy_share_estimate(0.0, 0.5) == 1.0    # nothing nearer a test image: all copies
    assert copy_share_estimate(0.6, 0.5) == 0.0    # clipped
    assert copy_share_estimate(None, 0.5) is None and copy_share_estimate(0.2, 0.0) is None
