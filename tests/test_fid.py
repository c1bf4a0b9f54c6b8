"""Frechet and kernel distances: identities, a reference implementation, and recorded settings."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from ganaug.metrics import fid
from ganaug.metrics.fid import (
    compare,
    feature_stats,
    frechet_distance,
    kernel_distance,
    polynomial_mmd2,
)

pytestmark = pytest.mark.filterwarnings("ignore:The `disp` argument is deprecated")


def random_spd(d: int, rng: np.random.Generator) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_feature_stats_are_numpy_mean_and_sample_covariance():
    f = np.random.default_rng(0).normal(size=(30, 4))
    mu, sigma = feature_stats(f)
    assert np.allclose(mu, f.mean(0))
    assert np.allclose(sigma, np.cov(f.T, ddof=1))
    with pytest.raises(ValueError, match="N >= 2"):
        feature_stats(f[:1])
    with pytest.raises(ValueError):
        feature_stats(f[0])  # 1-D


def test_frechet_equal_covariances_is_squared_mean_difference():
    rng = np.random.default_rng(1)
    sigma = random_spd(6, rng)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    assert frechet_distance(mu1, sigma, mu2, sigma) == pytest.approx(np.sum((mu1 - mu2) ** 2),
                                                                      abs=1e-6)


def test_frechet_of_identical_statistics_is_zero():
    rng = np.random.default_rng(2)
    sigma, mu = random_spd(5, rng), rng.normal(size=5)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-6)


def test_frechet_of_diagonal_gaussians_by_hand():
    # Commuting covariances: Tr(S1 + S2 - 2 sqrt(S1 S2)) = sum (sqrt(a) - sqrt(b))^2.
    mu1, mu2 = np.array([0.0, 1.0]), np.array([3.0, 1.0])
    s1, s2 = np.diag([4.0, 1.0]), np.diag([1.0, 9.0])
    expected = 9.0 + (2 - 1) ** 2 + (1 - 3) ** 2
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, abs=1e-8)


def test_frechet_of_one_dimensional_gaussians():
    # N(1, 4) vs N(0, 1): (1 - 0)^2 + (2 - 1)^2. The function promotes scalars with atleast_1d/2d.
    assert frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([0.0]),
                            np.array([[1.0]])) == pytest.approx(2.0)


def test_frechet_rejects_statistics_of_different_dimensions():
    with pytest.raises(ValueError, match="different dimensions"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


@pytest.mark.parametrize(("n", "d"), [(200, 16), (40, 8), (8, 16)])  # the last is singular
def test_frechet_agrees_with_pytorch_fid(n, d):
    from pytorch_fid.fid_score import calculate_frechet_distance

    rng = np.random.default_rng(n + d)
    a = rng.normal(size=(n, d))
    b = rng.normal(size=(n, d)) * 1.3 + 0.2
    s1, s2 = feature_stats(a), feature_stats(b)
    ours = frechet_distance(*s1, *s2)
    ref = calculate_frechet_distance(*s1, *s2)
    assert np.isfinite(ours)
    assert ours == pytest.approx(float(ref), rel=1e-6, abs=1e-8)


def test_frechet_does_not_use_the_removed_disp_argument(monkeypatch):
    real_sqrtm = linalg.sqrtm

    def sqrtm_without_disp(a, **kwargs):  # SciPy >= 1.18's signature
        if "disp" in kwargs:
            raise TypeError("sqrtm() got an unexpected keyword argument 'disp'")
        return real_sqrtm(a, **kwargs)

    monkeypatch.setattr(fid.linalg, "sqrtm", sqrtm_without_disp)
    rng = np.random.default_rng(3)
    sigma = random_spd(3, rng)
    assert frechet_distance(np.zeros(3), sigma, np.ones(3), sigma) == pytest.approx(3.0, abs=1e-6)


def test_polynomial_mmd2_by_hand():
    # D = 2, k(a, b) = (a.b / 2 + 1)^3. X = Y = {(2, 0), (0, 2)}: k = 27 on the diagonal, 1 off it.
    x = np.array([[2.0, 0.0], [0.0, 2.0]])
    # Unbiased: within-set terms exclude the diagonal (1 each), cross term is the full mean (14).
    assert polynomial_mmd2(x, x) == pytest.approx(1 + 1 - 2 * 14)
    # D = 1: X = {1, -1} gives (1*-1 + 1)^3 = 0 off the diagonal; Y = {0, 0} gives 1 everywhere.
    assert polynomial_mmd2(np.array([[1.0], [-1.0]]), np.zeros((2, 1))) == pytest.approx(0 + 1 - 2)


def test_polynomial_mmd2_matches_a_direct_double_sum():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))

    def k(a, b):
        return (a @ b / 3 + 1) ** 3

    sxx = sum(k(x[i], x[j]) for i in range(5) for j in range(5) if i != j) / 20
    syy = sum(k(y[i], y[j]) for i in range(4) for j in range(4) if i != j) / 12
    sxy = sum(k(x[i], y[j]) for i in range(5) for j in range(4)) / 20
    assert polynomial_mmd2(x, y) == pytest.approx(sxx + syy - 2 * sxy)


def test_feature_stats_in_row_blocks_agree_with_numpy_and_keep_float32_input():
    """Large feature sets are reduced a block at a time (a 1M-image pool's features are never
    copied whole in float64); the result is np.cov's to rounding, whatever the block size."""
    f = (np.random.default_rng(1).normal(size=(1003, 6)) * [1, 5, 0.1, 3, 2, 1] + 7
         ).astype(np.float32)
    exact_mu, exact_sigma = f.astype(np.float64).mean(0), np.cov(f.astype(np.float64).T)
    one_block = feature_stats(f)  # 6,018 elements: under the default block, np.cov itself
    assert np.array_equal(one_block[0], exact_mu) and np.array_equal(one_block[1], exact_sigma)
    for chunk in (12, 600, 6 * 1002, 6 * 1003 - 1):  # 2-row blocks, a ragged last block, ...
        mu, sigma = feature_stats(f, chunk=chunk)
        assert mu.dtype == sigma.dtype == np.float64
        np.testing.assert_allclose(mu, exact_mu, rtol=1e-12)
        np.testing.assert_allclose(sigma, exact_sigma, rtol=1e-10, atol=1e-12)
    nan = f.copy()
    nan[500, 2] = np.nan  # a NaN feature poisons the statistics in both paths, never silently
    assert np.isnan(feature_stats(nan, chunk=60)[1][2, 2])
    assert np.isnan(feature_stats(nan)[1][2, 2])


def test_kernel_distance_converts_only_its_subsets_and_gives_the_same_values():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(300, 5)).astype(np.float32)
    y = (rng.normal(size=(200, 5)) + 0.2).astype(np.float32)
    ref_rng = np.random.default_rng(3)  # the definition: whole sets in float64, then subsets
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    values = [polynomial_mmd2(x64[ref_rng.choice(300, 50, replace=False)],
                              y64[ref_rng.choice(200, 50, replace=False)]) for _ in range(7)]
    assert kernel_distance(x, y, 50, 7, np.random.default_rng(3)) == (
        float(np.mean(values)), float(np.std(values)))


def test_kernel_distance_near_zero_for_one_distribution_and_positive_for_a_shift():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(600, 8)), rng.normal(size=(600, 8))
    shifted = rng.normal(size=(600, 8)) + 0.5
    same_mean, same_std = kernel_distance(x, y, 100, 20, np.random.default_rng(0))
    diff_mean, diff_std = kernel_distance(x, shifted, 100, 20, np.random.default_rng(0))
    assert abs(same_mean) < 0.1
    assert diff_mean > 0.5
    assert diff_mean > 10 * abs(same_mean)
    assert same_std >= 0 and diff_std >= 0


def test_kernel_distance_is_reproducible_and_needs_two_samples():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(50, 4)), rng.normal(size=(40, 4)) + 1
    a = kernel_distance(x, y, 30, 5, np.random.default_rng(9))
    b = kernel_distance(x, y, 30, 5, np.random.default_rng(9))
    assert a == b
    with pytest.raises(ValueError, match="at least 2"):
        kernel_distance(x[:1], y, 30, 5, np.random.default_rng(0))


def test_compare_records_its_settings_and_agrees_with_the_parts():
    rng = np.random.default_rng(7)
    real, fake = rng.normal(size=(60, 5)), rng.normal(size=(40, 5)) + 0.3
    out = compare(real, fake, feature_space="scorer", subset_size=100, subsets=4, seed=1,
                  resize="bilinear 8->32")
    assert out["feature_space"] == "scorer" and out["resize"] == "bilinear 8->32"
    assert (out["feature_dim"], out["n_real"], out["n_fake"]) == (5, 60, 40)
    assert out["kid_subset_size"] == 40  # capped by the smaller set
    assert out["fid"] == pytest.approx(frechet_distance(*feature_stats(real), *feature_stats(fake)))
    kid, kid_std = kernel_distance(real, fake, 100, 4, np.random.default_rng(1))
    assert out["kid"] == pytest.approx(kid) and out["kid_std"] == pytest.approx(kid_std)
    assert "note" not in out  # N > feature dimension
    assert compare(real, fake, feature_space="scorer", subset_size=100, subsets=4, seed=1,
                   resize="bilinear 8->32") == out


def test_compare_notes_a_singular_covariance_when_n_is_at_most_the_dimension():
    rng = np.random.default_rng(8)
    real, fake = rng.normal(size=(50, 6)), rng.normal(size=(6, 6))
    out = compare(real, fake, feature_space="scorer", subset_size=10, subsets=2, seed=0)
    assert "N <= feature dimension" in out["note"]
    assert out["resize"] == "none"
    assert np.isfinite(out["fid"]) and out["kid"] is not None


@pytest.mark.parametrize(("n_real", "n_fake"), [(1, 10), (10, 1), (0, 10), (10, 0)])
def test_compare_with_fewer_than_two_samples_returns_none(n_real, n_fake):
    rng = np.random.default_rng(9)
    out = compare(rng.normal(size=(n_real, 3)), rng.normal(size=(n_fake, 3)),
                  feature_space="inception", subset_size=10, subsets=2, seed=0)
    assert out["fid"] is None and out["kid"] is None and out["kid_std"] is None
    assert out["note"] == "fewer than 2 samples"
    assert (out["n_real"], out["n_fake"], out["feature_dim"]) == (n_real, n_fake, 3)
    assert out["feature_space"] == "inception"
