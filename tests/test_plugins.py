"""Plugins: GAN families, selection strategies and dataset kinds from other packages' entry
points. A good plugin works like a built-in; a bad one (fails to import, takes a name already
registered, lacks what its registry needs) is one line naming the plugin, its distribution and
what is wrong, before any stage runs. The example package (tests/plugin_example, shown in the
README) runs through ``dvc repro`` in test_plugin_e2e.py."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from e2e import REPO_ROOT, study_env

from ganaug.codedeps import code_fingerprint
from ganaug.codestage import plugin_deps
from ganaug.data.base import check_dataset_kind
from ganaug.errors import PluginError, UserError
from ganaug.gan.family import check_family
from ganaug.gan.knobs import gan_config
from ganaug.registry import Registry, describe, plugin_entry_points
from ganaug.selection import check_strategy

EXAMPLE = REPO_ROOT / "tests" / "plugin_example"


def fake_distribution(root: Path, dist: str, entry_points: dict[str, dict[str, str]],
                      modules: dict[str, str] | None = None) -> Path:
    """A distribution as an installer leaves it: ``<dist>-0.1.dist-info`` (with
    ``entry_points.txt``) and its modules, in ``root`` (put it on sys.path)."""
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in eps.items())
        for group, eps in entry_points.items()))
    for name, source in (modules or {}).items():
        (root / f"{name}.py").write_text(textwrap.dedent(source))
    return root


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A folder on sys.path to install fake distributions into (each test its own)."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return root


def families(builtin: bool = True) -> Registry:
    """A fresh GAN family registry on the real entry-point group (FAMILIES itself is left
    alone), holding dcgan as its one built-in."""
    from ganaug.gan.noise import DCGAN

    reg = Registry("GAN family", group="ganaug.gan_families", check=check_family)
    if builtin:
        reg.register("dcgan")(DCGAN)
    return reg


def error_of(registry: Registry) -> str:
    with pytest.raises(PluginError) as info:
        len(registry)
    msg = str(info.value)
    assert "\n" not in msg and isinstance(info.value, UserError)
    return msg


# --------------------------------------------------------------------------------------------
# Bad plugins: one line naming the plugin, its distribution and what is wrong
# --------------------------------------------------------------------------------------------


def test_a_plugin_that_fails_to_import(site):
    fake_distribution(site, "lab-gans", {"ganaug.gan_families": {"broken": "lab_broken:Fam"}},
                      {"lab_broken": "import no_such_module_anywhere\n"})
    assert error_of(families()) == (
        "plugin 'broken' (ganaug.gan_families = lab_broken:Fam, distribution lab-gans 0.1): "
        "fails to import: ModuleNotFoundError: No module named 'no_such_module_anywhere'")


def test_a_plugin_whose_module_lacks_the_object(site):
    fake_distribution(site, "lab-gans", {"ganaug.gan_families": {"gone": "lab_gone:Missing"}},
                      {"lab_gone": "X = 1\n"})
    msg = error_of(families())
    assert msg.startswith("plugin 'gone' (ganaug.gan_families = lab_gone:Missing, "
                          "distribution lab-gans 0.1): fails to import: AttributeError")


def test_a_plugin_that_takes_a_built_in_name(site):
    fake_distribution(site, "lab-gans", {"ganaug.gan_families": {"dcgan": "lab_dup:Fam"}},
                      {"lab_dup": "raise RuntimeError('never imported')\n"})
    assert error_of(families()) == (
        "plugin 'dcgan' (ganaug.gan_families = lab_dup:Fam, distribution lab-gans 0.1): the "
        "name 'dcgan' is taken by ganaug's built-in GAN family 'dcgan'; rename the entry point")


def test_two_plugins_that_take_one_name(site):
    source = """
        from ganaug.gan.noise import DCGAN

        class Fam(DCGAN):
            name = ""
    """
    fake_distribution(site / "a", "lab-a", {"ganaug.gan_families": {"mine": "lab_a:Fam"}},
                      {"lab_a": source})
    fake_distribution(site / "b", "lab-b", {"ganaug.gan_families": {"mine": "lab_b:Fam"}},
                      {"lab_b": source})
    sys.path[:0] = [str(site / "a"), str(site / "b")]
    try:
        msg = error_of(families())
    finally:
        sys.path[:2] = []
    assert "the name 'mine' is taken by plugin 'mine' (ganaug.gan_families = lab_" in msg
    assert "distribution lab-a 0.1" in msg and "distribution lab-b 0.1" in msg


@pytest.mark.parametrize(("source", "needle"), [
    ("""
        from ganaug.gan import GanFamily

        class Fam(GanFamily):
            sign_calibrated = True
            def build(self): ...
     """, "Fam lacks the method(s) d_loss, disc_scores, g_loss, sampler (GanFamily)"),
    ("""
        class Fam:
            pass
     """, "is <class 'lab_bad.Fam'>, not a subclass of ganaug.gan.GanFamily"),
    ("""
        from ganaug.gan.noise import DCGAN

        class Fam(DCGAN):
            name = ""
            sign_calibrated = None
     """, "Fam.sign_calibrated must be True or False"),
    ("""
        from ganaug.gan.noise import DCGAN

        class Fam(DCGAN):
            name = ""
            config = dict
     """, "Fam.config must be a dataclass"),
    ("""
        from ganaug.gan.noise import DCGAN

        class Fam(DCGAN):
            name = ""
            score_names = ("d_confidence",)
     """, "Fam.score_names must be a tuple of names starting with 'realism'"),
    ("""
        from ganaug.gan.noise import DCGAN

        class Fam(DCGAN):
            pass
     """, "Fam.name is 'dcgan', registered as 'bad'"),
], ids=["abstract", "not-a-family", "sign-undeclared", "config-not-a-dataclass", "no-realism",
        "other-name"])
def test_a_family_that_lacks_what_the_registry_needs(site, request, source, needle):
    module = f"lab_bad_{request.node.callspec.id.replace('-', '_')}"  # one module per case
    fake_distribution(site, "lab-gans", {"ganaug.gan_families": {"bad": f"{module}:Fam"}},
                      {module: source})
    msg = error_of(families())
    assert msg.startswith(f"plugin 'bad' (ganaug.gan_families = {module}:Fam, distribution "
                          f"lab-gans 0.1): ")
    assert needle.replace("lab_bad", module) in msg


def test_a_family_named_like_a_shared_gan_key(site):
    fake_distribution(site, "lab-gans", {"ganaug.gan_families": {"width": "lab_w:Fam"}},
                      {"lab_w": "from ganaug.gan.noise import DCGAN\nclass Fam(DCGAN):\n"
                                "    name = ''\n"})
    assert "the name 'width' is a shared key of the gan section" in error_of(families())


def test_a_strategy_and_a_dataset_kind_that_lack_what_their_registries_need(site):
    fake_distribution(site, "lab-misc", {
        "ganaug.strategies": {"plain": "lab_misc:plain"},
        "ganaug.dataset_kinds": {"nokind": "lab_misc:nokind"}}, {"lab_misc": """
        from dataclasses import dataclass
        from ganaug.data.base import dataset_kind

        def plain(candidates, k, cfg):
            return []

        @dataclass(frozen=True)
        class NoKindConfig:
            path: str = ""

        nokind = dataset_kind(NoKindConfig)(lambda cfg: None)
    """})
    strategies = Registry("selection strategy", group="ganaug.strategies", check=check_strategy)
    assert "not a ganaug.selection.Strategy: decorate its pick function with " \
           "@ganaug.selection.strategy(ConfigClass)" in error_of(strategies)
    kinds = Registry("dataset kind", group="ganaug.dataset_kinds", check=check_dataset_kind)
    assert error_of(kinds).startswith(
        "plugin 'nokind' (ganaug.dataset_kinds = lab_misc:nokind, distribution lab-misc 0.1): "
        "its config must be a dataclass with a `kind` field")


def test_check_params_names_a_broken_plugin_before_any_stage_runs(site):
    """The whole-file check loads every plugin, used by the params or not: a broken one stops
    `dvc repro` at check_params, in one line, with exit status 1."""
    fake_distribution(site, "lab-gans", {"ganaug.strategies": {"oops": "lab_oops:pick"}},
                      {"lab_oops": "1 / 0\n"})
    env = study_env(REPO_ROOT)
    env["PYTHONPATH"] = f"{site}:{REPO_ROOT / 'src'}"
    proc = subprocess.run([sys.executable, "-m", "ganaug.validate", "presets/tiny.yaml"],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].endswith(
        "PluginError: plugin 'oops' (ganaug.strategies = lab_oops:pick, distribution lab-gans "
        "0.1): fails to import: ZeroDivisionError: division by zero"), lines


# --------------------------------------------------------------------------------------------
# A good plugin: loaded on the first lookup, then like a built-in
# --------------------------------------------------------------------------------------------


def test_plugins_load_on_the_first_lookup_not_at_import(site):
    fake_distribution(site, "lab-gans", {"ganaug.gan_families": {"later": "lab_later:Fam"}},
                      {"lab_later": "raise RuntimeError('imported')\n"})
    registry = families()  # building it and registering built-ins load nothing
    with pytest.raises(PluginError, match="RuntimeError: imported"):
        "dcgan" in registry  # noqa: B015 - the lookup is the point


def test_the_example_plugin_registers_a_family_a_strategy_and_a_kind(site, monkeypatch):
    """tests/plugin_example (the README's): each entry works where a built-in would."""
    import shutil

    shutil.copy(EXAMPLE / "tinygan.py", site / "tinygan_unit.py")
    fake_distribution(site, "ganaug-tiny", {
        "ganaug.gan_families": {"tiny": "tinygan_unit:TinyGAN"},
        "ganaug.strategies": {"every_nth": "tinygan_unit:every_nth"},
        "ganaug.dataset_kinds": {"mirrored_digits": "tinygan_unit:mirrored_digits"}})
    from ganaug.gan.train import train_gan

    reg = families()
    fam = reg.get("tiny")
    assert fam.name == "tiny" and reg.origin("tiny").startswith("plugin 'tiny' (")
    assert [describe(ep) for ep in plugin_entry_points("ganaug.gan_families")] == [
        "plugin 'tiny' (ganaug.gan_families = tinygan_unit:TinyGAN, distribution ganaug-tiny 0.1)"]

    # Its section parses with its own config class (FAMILIES itself does not hold it, so the
    # fresh registry stands in for it here).
    import ganaug.gan.family
    import ganaug.gan.knobs

    for module in (ganaug.gan.family, ganaug.gan.knobs):
        monkeypatch.setattr(module, "FAMILIES", reg)
    cfg = gan_config({"arch": "tiny", "width": 4, "steps": 3, "batch_size": 4,
                      "checkpoint_every": 3, "log_every": 1, "tiny": {"z_dim": 3}})
    with pytest.raises(UserError, match="gan.tiny.depth: unknown key"):
        gan_config({"arch": "tiny", "tiny": {"depth": 3}})
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (12, 1, 8, 8), dtype=np.uint8), np.arange(12) % 3
    result = train_gan(x, y, 3, cfg, torch.device("cpu"))
    assert cfg.knobs.z_dim == 3 and len(result.history) == 3
    assert result.payload({})["config"]["tiny"] == {"z_dim": 3, "hidden": 64}

    strategies = Registry("selection strategy", group="ganaug.strategies", check=check_strategy)
    assert strategies.get("every_nth").name == "every_nth"
    kinds = Registry("dataset kind", group="ganaug.dataset_kinds", check=check_dataset_kind)
    raw = kinds.get("mirrored_digits").load(None)
    assert raw.x.shape[1:] == (1, 8, 8) and raw.classes[0] == "0"


def test_a_plugins_code_is_part_of_its_resume_fingerprint(site):
    (site / "lab_fp.py").write_text("A = 1\n")
    before = code_fingerprint("ganaug.gan.train", "lab_fp")
    assert before != code_fingerprint("ganaug.gan.train")
    code_fingerprint.cache_clear()
    (site / "lab_fp.py").write_text("A = 2\n")
    assert code_fingerprint("ganaug.gan.train", "lab_fp") != before
    code_fingerprint.cache_clear()


def test_code_deps_list_a_plugin_in_the_repository_and_name_one_outside(site, tmp_path):
    """A plugin whose code lies in the study's repository becomes a dep of the stages that run
    its registry (so an edit reruns them); one installed elsewhere is named, not listed."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for folder in ("src", "stages"):
        (repo / folder).symlink_to(REPO_ROOT / folder)
    inside = repo / "plugins"
    fake_distribution(inside, "lab-in", {"ganaug.strategies": {"in_repo": "lab_in:pick"}},
                      {"lab_in": "PICK = 1\n"})
    fake_distribution(site, "lab-out", {"ganaug.gan_families": {"elsewhere": "lab_out:Fam"}},
                      {"lab_out": "FAM = 1\n"})
    sys.path.insert(0, str(inside))
    try:
        assert plugin_deps("stages.select", repo) == (["plugins/lab_in.py"], [])
        assert plugin_deps("stages.train", repo) == ([], [])  # runs no registry with plugins
        inside_gan, outside = plugin_deps("stages.train_gan", repo)
    finally:
        sys.path.remove(str(inside))
    assert inside_gan == [] and outside == [
        "plugin 'elsewhere' (ganaug.gan_families = lab_out:Fam, distribution lab-out 0.1)"]


def test_the_readmes_example_is_the_tested_package():
    """README "Extending" shows tests/plugin_example verbatim, so what it shows is what
    test_plugin_e2e.py installs and runs."""
    readme = (REPO_ROOT / "README.md").read_text()
    start = readme.index("## Extending")
    section = readme[start:readme.index("\n## ", start)]
    blocks = re.findall(r"```(python|toml)\n(.*?)```", section, flags=re.DOTALL)
    sources = {"python": (EXAMPLE / "tinygan.py").read_text(),
               "toml": (EXAMPLE / "pyproject.toml").read_text()}
    assert [lang for lang, _ in blocks] == ["toml", "python", "python"]
    for lang, code in blocks:
        assert code in sources[lang]
    shown = "\n\n".join(code for lang, code in blocks if lang == "python")
    assert shown == sources["python"]  # the whole module, in two parts
