"""The ``gan`` params section: shared knobs plus the chosen family's section ``gan.<arch>``; the
repo's files stay valid, bad values and misplaced knobs are errors naming the key."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from ganaug.config import GanConfig, ParamsError
from ganaug.gan import FAMILIES, gan_config
from ganaug.gan.noise import NoiseConfig, WganGpConfig
from ganaug.gan.stargan import StarganConfig


@pytest.mark.parametrize("path", ["params.yaml", "presets/tiny.yaml", "presets/topk_rl.yaml",
                                  "presets/fer2013.yaml"])
def test_the_repos_gan_sections_are_valid(repo_root, path):
    section = yaml.safe_load((repo_root / path).read_text())["gan"]
    cfg = gan_config(section, "gan", path)
    assert cfg.arch == section["arch"]
    assert cfg.knobs == FAMILIES.get(cfg.arch).config(**section[cfg.arch])


def test_the_default_study_keeps_its_knob_values(repo_root):
    # The move to per-family sections changed no value the default study's GAN trains with.
    cfg = gan_config(yaml.safe_load((repo_root / "params.yaml").read_text())["gan"])
    assert cfg.knobs == NoiseConfig(z_dim=32, per_class=False)
    assert (cfg.arch, cfg.width, cfg.steps, cfg.batch_size) == ("dcgan", 32, 2000, 64)


def test_wgan_gp_with_its_usual_params():
    cfg = gan_config({"arch": "wgan_gp", "n_critic": 5, "beta1": 0, "beta2": 0.9, "lr_g": 1e-4,
                      "lr_d": 1e-4, "ema_decay": None, "warmup_steps": 100,
                      "wgan_gp": {"gp_weight": 10, "per_class": True}})
    assert (cfg.beta1, cfg.ema_decay) == (0.0, None)
    assert cfg.knobs == WganGpConfig(z_dim=64, per_class=True, gp_weight=10.0)


def test_a_family_without_its_section_takes_its_defaults():
    assert gan_config({"arch": "stargan"}).knobs == StarganConfig()
    assert gan_config({"arch": "stargan", "stargan": None}).knobs == StarganConfig()
    assert gan_config(None) == gan_config({"arch": "dcgan", "dcgan": {}})


def test_section_round_trips_through_the_params_form():
    cfg = gan_config({"arch": "stargan", "diffaugment": ["color"],
                      "stargan": {"res_blocks": 2, "lambda_rec": 5.0}})
    section = cfg.section()
    assert section["stargan"] == dataclasses.asdict(StarganConfig(res_blocks=2, lambda_rec=5.0))
    assert "knobs" not in section and gan_config(section) == cfg


@pytest.mark.parametrize(("changes", "needle"), [
    ({"wgan_gp": {"gp_weight": -1.0}}, "gan.wgan_gp: gp_weight: must be a finite number >= 0"),
    ({"wgan_gp": {"gp_weight": float("inf")}}, "gan.wgan_gp.gp_weight: must be a finite number"),
    ({"lr_g": float("nan")}, "gan.lr_g: must be a finite number"),
    ({"ema_decay": 1.0}, "gan: ema_decay: must be in [0, 1)"),
    ({"ema_decay": -0.5}, "gan: ema_decay"),
    ({"warmup_steps": 10, "steps": 10}, "gan: warmup_steps: must be in [0, steps)"),
    ({"warmup_steps": -1}, "gan: warmup_steps"),
    ({"beta1": 1.0}, "gan: beta1: must be in [0, 1)"),
    ({"beta2": -0.1}, "gan: beta2"),
    ({"lr_d": 0.0}, "gan: lr_d: must be a finite number > 0"),
    ({"wgan_gp": {"per_class": "yes"}}, "gan.wgan_gp.per_class: Input should be a valid boolean"),
    ({"wgan_gp": {"z_dim": 0}}, "gan.wgan_gp: z_dim: must be >= 1"),
    ({"wgan_gp": {"z_dim": 2.0}}, "gan.wgan_gp.z_dim: Input should be a valid integer"),
    ({"wgan_gp": [1]}, "gan.wgan_gp: expected a mapping, got list"),
    ({"seed": -1}, "gan: seed"),
])
def test_bad_values_name_the_key(changes, needle):
    with pytest.raises(ParamsError) as info:
        gan_config({"arch": "wgan_gp", **changes})
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("section", "message"), [
    # A family's knob left among the shared ones (the flat form of older params files).
    ({"arch": "dcgan", "z_dim": 32},
     "gan.z_dim: unknown key; z_dim is a knob of dcgan: put it under gan.dcgan"),
    ({"arch": "dcgan", "res_blocks": 3},
     "gan.res_blocks: unknown key; res_blocks is a knob of stargan only, not of dcgan"),
    # A shared knob inside a family's section.
    ({"arch": "sngan", "sngan": {"n_critic": 5}},
     "gan.sngan.n_critic: unknown key; n_critic is a shared knob of every family: put it "
     "directly under gan"),
    ({"arch": "dcgan", "dcgan": {"z_dimm": 3}}, "gan.dcgan.z_dimm: unknown key"),
    ({"arch": "dcgan", "knobs": {"z_dim": 3}}, "gan.knobs: unknown key"),
    ({"arch": "dcgan", "stargn": {}}, "gan.stargn: unknown key"),
])
def test_a_misplaced_knob_says_where_it_belongs(section, message):
    with pytest.raises(ParamsError) as info:
        gan_config(section)
    assert str(info.value) == f"params.yaml: {message}"


def test_a_section_of_another_family_is_an_error():
    # Its knobs would be ignored, and editing them would still rerun train_gan (which declares
    # the whole gan section): refused, with the way to switch families.
    with pytest.raises(ParamsError) as info:
        gan_config({"arch": "stargan", "dcgan": {"z_dim": 32}, "stargan": {"res_blocks": 2}})
    assert str(info.value) == (
        "params.yaml: gan.dcgan: knobs of GAN family 'dcgan', but gan.arch is 'stargan': they "
        "would be ignored; remove the section (dvc exp run: -S '~gan.dcgan') or set gan.arch: "
        "dcgan")


def test_the_shared_config_has_no_family_knobs():
    shared = {f.name for f in dataclasses.fields(GanConfig)}
    for name in FAMILIES:
        own = {f.name for f in dataclasses.fields(FAMILIES.get(name).config)}
        assert not own & shared, f"{name}'s knobs {own & shared} are shared ones too"
