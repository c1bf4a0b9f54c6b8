"""The score stage's per-image table: the scorer's calibrated confidence, one forward pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gancfg import SMALL, gan_cfg

from ganaug.config import ScoreConfig
from ganaug.data import Prepared
from ganaug.gan import FAMILIES, family_for
from ganaug.gan.family import LoadedGan
from ganaug.inference import to_model_range
from ganaug.models import CLASSIFIERS
from ganaug.synthetic.scoring import run_score, score_images

K = 3


@pytest.fixture(scope="module")
def parts():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 1, 8, 8), dtype=np.uint8)
    labels = np.arange(40) % K
    family = family_for(gan_cfg("dcgan", z_dim=8, width=4), K, (1, 8, 8))
    nets = family.build().eval()
    gan = LoadedGan(family, nets.generator, nets.discriminator, {})
    scorer = CLASSIFIERS.get("small_cnn")(in_channels=1, num_classes=K, image_size=8,
                                          width=4).eval()
    return images, labels, gan, scorer


def expected_probs(scorer, images, temperature):
    with torch.no_grad():
        logits = scorer(to_model_range(torch.from_numpy(images)))
    return torch.softmax(logits / temperature, 1).numpy()


@pytest.mark.parametrize("temperature", [1.0, 0.5, 2.0])
def test_confidence_is_the_temperature_scaled_probability_of_the_intended_label(parts, temperature):
    images, labels, gan, scorer = parts
    table, feats = score_images(images, labels, scorer, gan, 16, torch.device("cpu"), temperature)
    p = expected_probs(scorer, images, temperature)
    np.testing.assert_allclose(table.confidence, p[np.arange(40), labels], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(table.predicted_prob, p.max(1), rtol=1e-5, atol=1e-7)
    assert (table.predicted == p.argmax(1)).all()
    with torch.no_grad():
        np.testing.assert_array_equal(feats, scorer.features(to_model_range(torch.from_numpy(images))))


def test_the_one_pass_table_equals_the_two_pass_one(parts):
    """A classifier without classify() (a user's registered model) gets two passes; a built-in one
    gets features and logits from one pass, with exactly the same numbers."""
    images, labels, gan, scorer = parts

    class TwoPass(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def features(self, x):
            return self.inner.features(x)

        def forward(self, x):
            return self.inner(x)

    one = score_images(images, labels, scorer, gan, 16, torch.device("cpu"), 0.7)
    two = score_images(images, labels, TwoPass(scorer), gan, 16, torch.device("cpu"), 0.7)
    assert one[0].equals(two[0])
    np.testing.assert_array_equal(one[1], two[1])


def test_run_score_applies_the_checkpoints_temperature(parts):
    """The temperature the score stage reads from the scorer's checkpoint reaches the confidence
    column (it was once recorded in the metrics but not applied)."""
    images, labels, gan, scorer = parts
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (30, 1, 8, 8), dtype=np.uint8)
    y = np.arange(30) % K
    data = Prepared(splits={s: (x, y) for s in ("train", "val", "test")},
                    classes=[str(c) for c in range(K)], meta={})
    cfg = ScoreConfig(batch_size=16, kid_subset_size=10, kid_subsets=2, prdc_per_class=10)
    result = run_score(images, labels, None, scorer, gan, data, cfg, torch.device("cpu"),
                       temperature=0.5)
    p = expected_probs(scorer, images, 0.5)
    np.testing.assert_allclose(result.scores.table.confidence, p[np.arange(40), labels],
                               rtol=1e-5, atol=1e-7)
    assert result.metrics["scorer_temperature"] == 0.5


@pytest.mark.parametrize("arch", list(FAMILIES))
def test_chunked_cpu_scoring_equals_one_whole_batch(arch):
    """On the CPU, 48x48 images are scored 64 at a time whatever batch_size says: every column
    and the features equal one pass over all the images at once, and each image's discriminator
    score is computed with its own label (300 images: four chunks of 64 and one of 44)."""
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    n, k = 300, 7
    images = rng.integers(0, 256, (n, 1, 48, 48), dtype=np.uint8)
    labels = rng.integers(0, k, n)
    family = family_for(gan_cfg(arch, SMALL, width=4), k, (1, 48, 48))
    nets = family.build().eval()
    gan = LoadedGan(family, nets.generator, nets.discriminator, {})
    scorer = CLASSIFIERS.get("small_cnn")(in_channels=1, num_classes=k, image_size=48,
                                          width=4).eval()
    table, feats = score_images(images, labels, scorer, gan, 1024, torch.device("cpu"), 0.8)
    x = to_model_range(torch.from_numpy(images))
    with torch.no_grad():
        whole_feats = scorer.features(x)
        probs = torch.softmax(scorer(x) / 0.8, 1).numpy()
        disc = family.disc_scores(nets.discriminator, x, torch.from_numpy(labels))
    np.testing.assert_allclose(feats, whole_feats.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(table.confidence, probs[np.arange(n), labels], rtol=1e-5,
                               atol=1e-6)
    for name in family.score_names:
        np.testing.assert_allclose(table[name], disc[name].float().numpy(), rtol=1e-4,
                                   atol=1e-5, err_msg=name)
