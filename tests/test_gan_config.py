"""The ``gan`` params section: the repo's files stay valid, bad values are errors naming the key."""

from __future__ import annotations

import pytest
import yaml

from ganaug.config import GanConfig, ParamsError, parse


@pytest.mark.parametrize("path", ["params.yaml", "presets/tiny.yaml"])
def test_the_repos_gan_sections_are_valid(repo_root, path):
    section = yaml.safe_load((repo_root / path).read_text())["gan"]
    cfg = parse(GanConfig, section, "gan", path)
    assert cfg.arch == section["arch"]


def test_wgan_gp_with_its_usual_params():
    cfg = parse(GanConfig, {"arch": "wgan_gp", "n_critic": 5, "beta1": 0, "beta2": 0.9,
                            "lr_g": 1e-4, "lr_d": 1e-4, "gp_weight": 10, "ema_decay": None,
                            "per_class": True, "warmup_steps": 100}, "gan")
    assert (cfg.beta1, cfg.gp_weight, cfg.ema_decay, cfg.per_class) == (0.0, 10.0, None, True)


@pytest.mark.parametrize(("changes", "needle"), [
    ({"gp_weight": -1.0}, "gan: gp_weight: must be a finite number >= 0"),
    ({"gp_weight": float("inf")}, "gan.gp_weight: must be a finite number"),
    ({"lr_g": float("nan")}, "gan.lr_g: must be a finite number"),
    ({"ema_decay": 1.0}, "gan: ema_decay: must be in [0, 1)"),
    ({"ema_decay": -0.5}, "gan: ema_decay"),
    ({"warmup_steps": 10, "steps": 10}, "gan: warmup_steps: must be in [0, steps)"),
    ({"warmup_steps": -1}, "gan: warmup_steps"),
    ({"beta1": 1.0}, "gan: beta1: must be in [0, 1)"),
    ({"beta2": -0.1}, "gan: beta2"),
    ({"lr_d": 0.0}, "gan: lr_d: must be a finite number > 0"),
    ({"per_class": "yes"}, "gan.per_class: Input should be a valid boolean"),
    ({"seed": -1}, "gan: seed"),
])
def test_bad_values_name_the_key(changes, needle):
    with pytest.raises(ParamsError) as info:
        parse(GanConfig, changes, "gan")
    assert needle in str(info.value)
