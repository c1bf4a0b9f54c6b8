"""Selection strategies and their statistics on hand-made score tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from ganaug.data import Prepared
from ganaug.errors import SelectionError
from ganaug.selection import (
    STRATEGIES,
    Candidates,
    check_pool_capacity,
    choose,
    k_per_class,
    selection_stats,
)
from ganaug.selection.kcenter import KCenterConfig, greedy_k_center, select_kcenter
from ganaug.selection.strategies import (
    CombinedConfig,
    ConfidenceConfig,
    RandomConfig,
    RealismConfig,
    ThresholdConfig,
    combined_score,
    select_combined,
    select_confidence,
    select_random,
    select_realism,
    select_threshold,
)

ConfidenceSelectConfig, RandomSelectConfig = ConfidenceConfig, RandomConfig
RealismSelectConfig, ThresholdSelectConfig = RealismConfig, ThresholdConfig
# Cheap settings for strategies whose defaults train networks.
TINY_CONFIGS = {"rl": dict(episodes=2, candidates_per_episode=4, child_steps=2, child_width=2,
                           policy_width=2, batch_size=8)}

# One row per pool image. Pool indices are not row positions (rows are in scrambled order) so a
# strategy that confused the two would be caught.
ROWS = [  # index, label, confidence, predicted, realism
    (14, 0, 0.95, 1, -0.5),
    (16, 1, 0.30, 0, 2.0),
    (10, 0, 0.90, 0, 0.1),
    (13, 0, 0.10, 1, 0.9),
    (18, 1, 0.30, 1, 0.0),
    (11, 0, 0.50, 0, 0.7),
    (17, 1, 0.80, 1, 1.0),
    (12, 0, 0.90, 0, 0.7),
    (15, 1, 0.30, 1, 2.0),
]
CLASSES = ["a", "b"]


@pytest.fixture
def scores() -> pd.DataFrame:
    return pd.DataFrame(ROWS, columns=["index", "label", "confidence", "predicted", "realism"])


def big_pool(per_class: int = 50, num_classes: int = 3, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = per_class * num_classes
    labels = np.repeat(np.arange(num_classes), per_class)
    perm = rng.permutation(n)
    return pd.DataFrame({
        "index": np.arange(n)[perm] + 1000,
        "label": labels[perm],
        "confidence": rng.uniform(size=n),
        "predicted": rng.integers(0, num_classes, n),
        "realism": rng.normal(size=n),
    })


def label_of(scores: pd.DataFrame) -> dict[int, int]:
    return dict(zip(scores["index"], scores["label"], strict=True))


# --------------------------------------------------------------------------------------------
# k_per_class and pool capacity
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("counts", "ratio", "expected"), [
    ([1, 2, 3, 5], 0.5, [1, 1, 2, 3]),  # 0.5 -> 1, 1.5 -> 2 and 2.5 -> 3: halves go up
    ([1, 3, 10], 1.5, [2, 5, 15]),
    ([4, 7], 2, [8, 14]),
    ([4, 7], 0, [0, 0]),
    ([0, 9], 1, [0, 9]),
    ([3, 10], 0.25, [1, 3]),  # 0.75 -> 1, 2.5 -> 3
    ([2, 6], 0.2, [0, 1]),  # 0.4 -> 0, 1.2 -> 1
])
def test_k_per_class_rounds_half_up(counts, ratio, expected):
    k = k_per_class(np.array(counts), ratio)
    assert k.tolist() == expected
    assert np.issubdtype(k.dtype, np.integer)


def test_k_per_class_rejects_a_negative_ratio():
    with pytest.raises(ValueError, match="ratio"):
        k_per_class(np.array([3]), -0.5)


@pytest.mark.parametrize(("ratio", "count", "expected"), [(0.7, 45, 32), (1.15, 50, 58),
                                                          (0.35, 90, 32)])
def test_k_per_class_rounds_decimal_halves_up(ratio, count, expected):
    # params.yaml holds decimal ratios; ratio x count is exactly x.5 in decimal.
    assert k_per_class(np.array([count]), ratio)[0] == expected


def test_check_pool_capacity_passes_when_the_pool_is_large_enough(scores):
    check_pool_capacity(scores, np.array([5, 4]), 1.0, CLASSES)  # exactly full: no error


def test_check_pool_capacity_names_the_class_and_the_param_to_change(scores):
    with pytest.raises(ValueError) as info:
        check_pool_capacity(scores, np.array([5, 6]), 3.0, ["cat", "dog"])
    msg = str(info.value)
    assert "'dog'" in msg and "'cat'" not in msg
    assert "K=6" in msg and "holds 4" in msg
    assert "generate.max_ratio" in msg
    assert "3.0" in msg


def translation_pool(real_counts: np.ndarray, per_class: int) -> pd.DataFrame:
    """A StarGAN-like pool: ``per_class`` images per class, each translated from a real training
    image of another class (``source_index`` >= 0)."""
    counts = np.asarray(real_counts)
    real_y = np.repeat(np.arange(len(counts)), counts)
    labels = np.repeat(np.arange(len(counts)), per_class)
    sources = np.concatenate([np.flatnonzero(real_y != c)[:per_class] for c in range(len(counts))])
    return pd.DataFrame({"index": np.arange(len(labels)), "label": labels, "confidence": 0.5,
                         "predicted": labels, "realism": 0.0, "source_index": sources,
                         "source_label": real_y[sources]})


def test_a_translation_pool_capped_by_its_sources_gets_advice_that_can_work():
    # Two classes of 50 real images, ratio 2: K = 100 per class, but StarGAN translates each
    # class from the other's 50 images, so the pool holds 50 whatever max_ratio says.
    counts = np.array([50, 50])
    pool = translation_pool(counts, 50)
    with pytest.raises(SelectionError) as info:
        choose(Candidates(pool, classes=["cat", "dog"]), counts, 2.0, "random", RandomConfig())
    msg = str(info.value)
    assert "\n" not in msg
    assert "class 'cat' needs K=100" in msg and "holds 50" in msg
    assert "translates real images" in msg and "at most 50 per class here" in msg
    assert "ratio 1 for this class" in msg
    assert "cannot raise that" in msg  # not "raise generate.max_ratio"
    assert "raise generate.max_ratio" not in msg
    assert "study.ratios" in msg and "noise-to-image family (gan.arch such as dcgan" in msg


def test_a_translation_pool_sized_below_its_cap_still_says_raise_max_ratio():
    # Three classes of 20: a class can be translated from 40 images, but the pool was sized at 25.
    counts = np.array([20, 20, 20])
    with pytest.raises(SelectionError) as info:
        check_pool_capacity(translation_pool(counts, 25), np.array([30, 30, 30]), 1.5,
                            ["a", "b", "c"], counts)
    msg = str(info.value)
    assert "raise generate.max_ratio" in msg and "at most 40 per class here" in msg


def test_a_noise_pool_keeps_the_max_ratio_advice(scores):
    noise = scores.assign(source_index=-1, source_label=-1)
    with pytest.raises(SelectionError, match="raise generate.max_ratio") as info:
        check_pool_capacity(noise, np.array([5, 6]), 3.0, ["cat", "dog"], np.array([2, 2]))
    assert "translates" not in str(info.value)


def test_check_pool_capacity_counts_a_class_missing_from_the_pool(scores):
    with pytest.raises(ValueError, match="'c'.*holds 0"):
        check_pool_capacity(scores, np.array([1, 1, 1]), 1.0, ["a", "b", "c"])


# --------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------


def test_confidence_picks_top_k_per_class_ties_to_lower_index(scores):
    chosen = select_confidence(Candidates(scores), np.array([3, 2]), ConfidenceSelectConfig())
    # a: 14 (.95), then 10 and 12 (.90); b: 17 (.80), then the lowest index of the .30 tie.
    assert chosen.tolist() == [10, 12, 14, 15, 17]


def test_confidence_tie_at_the_cut_goes_to_the_lower_index(scores):
    chosen = select_confidence(Candidates(scores), np.array([2, 0]), ConfidenceSelectConfig())
    assert chosen.tolist() == [10, 14]  # 10 and 12 tie at .90; 10 wins


def test_confidence_require_correct_drops_misclassified_images(scores):
    cfg = ConfidenceSelectConfig(require_correct=True)
    chosen = select_confidence(Candidates(scores), np.array([2, 2]), cfg)
    # 14 (.95) is predicted as b, so a gets 10 and 12; b: 17 then 15 (16 is predicted as a).
    assert chosen.tolist() == [10, 12, 15, 17]
    # a has only three correctly predicted images: a K of 4 gets three, never padding.
    short = select_confidence(Candidates(scores), np.array([4, 0]), cfg)
    assert short.tolist() == [10, 11, 12]


def test_realism_picks_top_k_per_class_ties_to_lower_index(scores):
    chosen = select_realism(Candidates(scores), np.array([2, 2]), RealismSelectConfig())
    # a: 13 (.9), then 11 and 12 tie at .7 -> 11; b: 15 and 16 tie at 2.0.
    assert chosen.tolist() == [11, 13, 15, 16]


def test_realism_require_correct(scores):
    chosen = select_realism(Candidates(scores), np.array([2, 2]), RealismSelectConfig(require_correct=True))
    assert chosen.tolist() == [11, 12, 15, 17]


def test_top_k_strategies_match_a_sort_on_a_larger_pool():
    pool = big_pool()
    k = np.array([7, 0, 13])
    for column, fn, cfg in (("confidence", select_confidence, ConfidenceSelectConfig()),
                            ("realism", select_realism, RealismSelectConfig())):
        chosen = fn(Candidates(pool), k, cfg)
        expected = []
        for c, kc in enumerate(k):
            rows = pool[pool.label == c].sort_values([column, "index"], ascending=[False, True])
            expected += rows["index"].head(kc).tolist()
        assert chosen.tolist() == sorted(expected)


def test_random_is_reproducible_per_seed_and_respects_classes():
    pool = big_pool()
    labels = label_of(pool)
    k = np.array([5, 0, 12])
    a = select_random(Candidates(pool), k, RandomSelectConfig(seed=3))
    b = select_random(Candidates(pool), k, RandomSelectConfig(seed=3))
    c = select_random(Candidates(pool), k, RandomSelectConfig(seed=4))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    for chosen in (a, c):
        assert len(np.unique(chosen)) == len(chosen) == 17
        assert np.all(np.diff(chosen) > 0)  # sorted
        per_class = np.bincount([labels[i] for i in chosen], minlength=3)
        assert per_class.tolist() == [5, 0, 12]


def test_threshold_keeps_only_passing_images_caps_at_k_and_reports_shortfall(scores):
    cfg = ThresholdSelectConfig(min_confidence=0.5, seed=0)
    k = np.array([3, 2])
    chosen = select_threshold(Candidates(scores), k, cfg)
    labels = label_of(scores)
    a = [i for i in chosen if labels[i] == 0]
    b = [i for i in chosen if labels[i] == 1]
    assert len(a) == 3 and set(a) <= {10, 11, 12, 14}  # 11 sits exactly at t and passes
    assert b == [17]  # the only b image at or above 0.5; not padded to K
    stats = selection_stats(scores, chosen, k, CLASSES)
    assert stats["per_class"]["b"]["shortfall"] == 1
    assert stats["per_class"]["a"]["shortfall"] == 0
    assert stats["shortfall_total"] == 1 and not stats["filled"]
    assert stats["chosen_total"] == 4 and stats["k_total"] == 5
    assert np.array_equal(chosen, select_threshold(Candidates(scores), k, cfg))  # same seed, same choice


def test_threshold_on_a_larger_pool_never_selects_below_t():
    pool = big_pool(per_class=80)
    conf = dict(zip(pool["index"], pool["confidence"], strict=True))
    labels = label_of(pool)
    k = np.array([10, 30, 60])
    chosen = select_threshold(Candidates(pool), k, ThresholdSelectConfig(min_confidence=0.6, seed=1))
    assert all(conf[i] >= 0.6 for i in chosen)
    counts = np.bincount([labels[i] for i in chosen], minlength=3)
    passing = np.bincount(pool.label[pool.confidence >= 0.6], minlength=3)
    assert counts.tolist() == np.minimum(k, passing).tolist()
    other = select_threshold(Candidates(pool), k, ThresholdSelectConfig(min_confidence=0.6, seed=2))
    assert not np.array_equal(chosen, other)


def test_threshold_of_one_keeps_only_certain_images(scores):
    chosen = select_threshold(Candidates(scores), np.array([3, 3]), ThresholdSelectConfig(min_confidence=1.0))
    assert chosen.size == 0


def full_candidates(scores: pd.DataFrame, num_classes: int, seed: int = 0) -> Candidates:
    """Candidates with everything a strategy may read: features and 8x8 images indexed by pool
    index, and a small real dataset."""
    rng = np.random.default_rng(seed)
    n = int(scores["index"].max()) + 1
    images = rng.integers(0, 256, (n, 1, 8, 8), dtype=np.uint8)
    y = np.repeat(np.arange(num_classes), 4)
    x = rng.integers(0, 256, (len(y), 1, 8, 8), dtype=np.uint8)
    real = Prepared(splits={"train": (x, y), "val": (x, y), "test": (x, y)},
                    classes=[str(c) for c in range(num_classes)], meta={})
    return Candidates(scores=scores, features=rng.normal(size=(n, 6)).astype(np.float32),
                      images=images, real=real, device="cpu",
                      classes=[str(c) for c in range(num_classes)])


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_strategy_picks_at_most_k_from_the_right_class(name, one_thread):
    pool = big_pool(per_class=40, num_classes=4, seed=5)
    labels = label_of(pool)
    k = np.array([0, 3, 40, 11])
    strategy = STRATEGIES.get(name)
    chosen, extra = strategy.pick(full_candidates(pool, 4), k,
                                  strategy.config(**TINY_CONFIGS.get(name, {})))
    assert len(np.unique(chosen)) == len(chosen)
    assert set(chosen.tolist()) <= set(pool["index"].tolist())
    counts = np.bincount([labels[i] for i in chosen], minlength=4)
    assert np.all(counts <= k)
    assert counts[0] == 0
    assert isinstance(extra, dict)


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_strategy_with_zero_k_selects_nothing(name, scores, one_thread):
    strategy = STRATEGIES.get(name)
    chosen, _ = strategy.pick(full_candidates(scores, 2), np.array([0, 0]),
                              strategy.config(**TINY_CONFIGS.get(name, {})))
    assert chosen.size == 0


def test_choose_reports_nothing_passing_as_a_selection_error(scores):
    from ganaug.errors import SelectionError

    with pytest.raises(SelectionError, match="select.threshold"):
        choose(Candidates(scores, classes=CLASSES), np.array([4, 4]), 0.5, "threshold",
               ThresholdConfig(min_confidence=1.0))


# --------------------------------------------------------------------------------------------
# combined and kcenter
# --------------------------------------------------------------------------------------------


def test_combined_score_by_hand():
    realism = np.array([1.0, 3.0])  # standardised: -1, +1
    conf = np.array([np.exp(-1.0), np.exp(-4.0)])
    assert combined_score(realism, conf, 1.0, True) == pytest.approx([-2.0, -3.0])
    assert combined_score(realism, conf, 0.5, False) == pytest.approx([0.5, 1.0])
    assert combined_score(realism, conf, 0.0, True) == pytest.approx([-1.0, 1.0])
    # A constant realism column stays 0; a confidence of 0 does not give -inf.
    out = combined_score(np.array([2.0, 2.0]), np.array([0.0, 1.0]), 1.0, True)
    assert np.isfinite(out).all() and out[1] == 0.0 and out[0] < -700


def test_combined_weight_moves_from_realism_to_confidence(scores):
    k = np.array([2, 1])
    by_realism = select_combined(Candidates(scores), k, CombinedConfig(weight=0.0))
    assert by_realism.tolist() == select_realism(Candidates(scores), k, RealismConfig()).tolist()
    k = np.array([1, 1])  # (a tie at the second place of class a would go by realism)
    by_conf = select_combined(Candidates(scores), k, CombinedConfig(weight=1000.0))
    assert by_conf.tolist() == select_confidence(Candidates(scores), k,
                                                 ConfidenceConfig()).tolist()


def test_k_center_picks_the_known_farthest_points():
    # A cluster near the origin and three far corners: after the start (the origin), k-center
    # takes the farthest corner, then the farthest from both, and so on.
    x = np.array([[0, 0], [0.1, 0], [0, 0.1], [10, 0], [0, 6], [-3, -3], [0.05, 0.05]], float)
    assert greedy_k_center(x, 4, first=0).tolist() == [0, 3, 4, 5]
    assert greedy_k_center(x, 1, first=6).tolist() == [6]
    assert greedy_k_center(x, 0, first=0).tolist() == []
    assert sorted(greedy_k_center(x, 10, first=0).tolist()) == list(range(7))  # capped at N


def test_kcenter_selection_spreads_out_where_confidence_clusters():
    # Class 0: ten near-duplicates with the highest confidence and five spread-out images.
    feats = np.concatenate([np.full((10, 2), 5.0) + np.arange(10)[:, None] * 1e-3,
                            np.array([[0, 0], [10, 0], [0, 10], [10, 10], [-5, 5]], float)])
    scores = pd.DataFrame({"index": np.arange(15), "label": 0,
                           "confidence": np.r_[np.full(10, 0.9), np.full(5, 0.5)],
                           "predicted": 0, "realism": 0.0})
    cand = Candidates(scores, features=feats.astype(np.float32), classes=["a"])
    top = select_confidence(cand, np.array([5]), ConfidenceConfig())
    spread = select_kcenter(cand, np.array([5]), KCenterConfig(min_confidence=0.0))
    assert set(top.tolist()) <= set(range(10))  # confidence takes near-duplicates
    assert len(set(spread.tolist()) & set(range(10))) == 1  # k-center takes one of them
    stats_top = selection_stats(scores, top, np.array([5]), ["a"], feats)
    stats_spread = selection_stats(scores, spread, np.array([5]), ["a"], feats)
    assert stats_top["spread_vs_random"] < 1 < stats_spread["spread_vs_random"]
    only_confident = select_kcenter(cand, np.array([5]), KCenterConfig(min_confidence=0.8))
    assert set(only_confident.tolist()) <= set(range(10))


def test_kcenter_by_default_does_not_take_a_low_confidence_outlier_first():
    # Class 0: five confident images on a unit square's corners and centre, and one failed sample
    # (confidence 0.1) far away at (100, 100). Farthest-first with no confidence floor takes the
    # outlier right after the first center; the default floor (0.5: the intended label is the
    # scorer's argmax) never lets it compete.
    feats = np.array([[0.5, 0.5], [0, 0], [1, 0], [0, 1], [1, 1], [100, 100]], np.float32)
    scores = pd.DataFrame({"index": np.arange(6), "label": 0,
                           "confidence": [0.95, 0.9, 0.8, 0.7, 0.6, 0.1],
                           "predicted": [0, 0, 0, 0, 0, 1], "realism": 0.0})
    cand = Candidates(scores, features=feats, classes=["a"])
    assert KCenterConfig().min_confidence == 0.5
    no_floor = select_kcenter(cand, np.array([2]), KCenterConfig(min_confidence=0.0))
    assert no_floor.tolist() == [0, 5]  # the centre, then the outlier
    for start in ("confidence", "mean"):
        picked = select_kcenter(cand, np.array([3]), KCenterConfig(start=start))
        assert 5 not in picked.tolist() and len(picked) == 3
    # By hand: start at the most confident (the centre, 0); every corner is sqrt(0.5) from it,
    # so ties go to the lowest index (1), and then again (2: sqrt(0.5) from the centre, like 3, 4).
    assert select_kcenter(cand, np.array([3]), KCenterConfig()).tolist() == [0, 1, 2]


def test_the_default_params_kcenter_floor_is_the_config_default():
    params = yaml.safe_load((Path(__file__).parents[1] / "params.yaml").read_text())
    assert params["select"]["kcenter"]["min_confidence"] == KCenterConfig().min_confidence


# --------------------------------------------------------------------------------------------
# selection_stats
# --------------------------------------------------------------------------------------------


def test_selection_stats_by_hand(scores):
    stats = selection_stats(scores, np.array([10, 12, 14, 15, 17]), np.array([3, 2]), CLASSES)
    a, b = stats["per_class"]["a"], stats["per_class"]["b"]
    assert (a["k"], a["chosen"], a["shortfall"]) == (3, 3, 0)
    assert a["mean_confidence"] == pytest.approx((0.90 + 0.90 + 0.95) / 3)
    assert a["mean_realism"] == pytest.approx((0.1 + 0.7 - 0.5) / 3)
    assert a["agreement"] == pytest.approx(2 / 3)  # 14 is predicted as b
    assert (b["k"], b["chosen"], b["shortfall"]) == (2, 2, 0)
    assert b["mean_confidence"] == pytest.approx(0.55)
    assert b["mean_realism"] == pytest.approx(1.5)
    assert b["agreement"] == pytest.approx(1.0)
    assert stats["k_total"] == 5 and stats["chosen_total"] == 5
    assert stats["shortfall_total"] == 0 and stats["filled"] is True
    assert stats["mean_confidence"] == pytest.approx(3.85 / 5)
    assert stats["mean_realism"] == pytest.approx(3.3 / 5)
    assert stats["agreement"] == pytest.approx(4 / 5)


def test_selection_stats_for_a_class_with_nothing_chosen(scores):
    stats = selection_stats(scores, np.array([13]), np.array([1, 2]), CLASSES)
    b = stats["per_class"]["b"]
    assert (b["chosen"], b["shortfall"]) == (0, 2)
    assert b["mean_confidence"] is None and b["mean_realism"] is None and b["agreement"] is None
    assert stats["per_class"]["a"]["agreement"] == 0.0  # 13 is predicted as b
    assert stats["shortfall_total"] == 2 and stats["filled"] is False


def test_selection_stats_of_an_empty_selection(scores):
    stats = selection_stats(scores, np.zeros(0, np.int64), np.array([0, 0]), CLASSES)
    assert stats["chosen_total"] == 0 and stats["filled"] is True
    assert stats["mean_confidence"] is None and stats["agreement"] is None
