"""Typed params sections: unknown keys and wrong types are errors naming ``section.key``."""

from __future__ import annotations

import dataclasses
import functools
import re
from pathlib import Path

import pytest
import yaml

from ganaug.config import (
    ClassifierConfig,
    DataConfig,
    GanConfig,
    GenerateConfig,
    ParamsError,
    ReportConfig,
    ScoreConfig,
    ScorerConfig,
    StudyConfig,
    get_key,
    load_params,
    parse,
    read_params,
)
from ganaug.gan import FAMILIES
from ganaug.gan.noise import NoiseConfig
from ganaug.selection import STRATEGIES
from ganaug.validate import validate_params

REPO = Path(__file__).resolve().parents[1]
PARAMS_FILES = [REPO / "params.yaml", *sorted((REPO / "presets").glob("*.yaml"))]

# Params section -> the dataclass its stage parses it into.
SECTIONS: dict[str, type] = {
    "study": StudyConfig,
    "data": DataConfig,
    "scorer": ScorerConfig,
    "gan": GanConfig,
    "generate": GenerateConfig,
    "score": ScoreConfig,
    "classifier": ClassifierConfig,
    "report": ReportConfig,
    **{f"select.{name}": STRATEGIES.get(name).config for name in STRATEGIES},
    # Each GAN family's own section (gan.<arch>), which gan_config parses beside the shared keys.
    **{f"gan.{name}": FAMILIES.get(name).config for name in FAMILIES},
}


@functools.cache
def repo_params() -> dict:
    return load_params(REPO / "params.yaml")


def valid(section: str) -> dict:
    """The section's value in the repo's params.yaml (it holds every required key); a GAN
    family's section is {} where the file has none, and the gan section's shared keys alone are
    what GanConfig parses."""
    if section.startswith("gan.") and section.split(".")[1] not in repo_params()["gan"]:
        return {}
    value = dict(get_key(repo_params(), section) or {})
    return {k: v for k, v in value.items() if k not in FAMILIES} if section == "gan" else value


def error_of(cls: type, value: dict, key: str) -> str:
    with pytest.raises(ParamsError) as info:
        parse(cls, value, key)
    return str(info.value)


# --------------------------------------------------------------------------------------------
# Every section: unknown keys and wrong types
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("section", list(SECTIONS))
def test_section_parses_from_params_yaml(section):
    cfg = parse(SECTIONS[section], valid(section), section)
    assert isinstance(cfg, SECTIONS[section])


@pytest.mark.parametrize("section", list(SECTIONS))
def test_section_rejects_an_unknown_key(section):
    msg = error_of(SECTIONS[section], {**valid(section), "no_such_knob": 1}, section)
    assert f"params.yaml: {section}.no_such_knob: unknown key" in msg


FIELDS = [(section, f.name) for section, cls in SECTIONS.items()
          for f in dataclasses.fields(cls) if (cls, f.name) != (GanConfig, "knobs")]


@pytest.mark.parametrize(("section", "key"), FIELDS, ids=[f"{s}.{k}" for s, k in FIELDS])
def test_every_field_rejects_a_wrong_type(section, key):
    # A mapping is the wrong type for every scalar and list field.
    msg = error_of(SECTIONS[section], {**valid(section), key: {"oops": 1}}, section)
    assert f"{section}.{key}" in msg
    assert "oops" in msg  # the offending value is shown


@pytest.mark.parametrize(("cls", "section", "value", "expected"), [
    (GanConfig, "gan", {"lr_g": "fast"},
     "params.yaml: gan.lr_g: Input should be a valid number, got 'fast'"),
    (NoiseConfig, "gan.dcgan", {"z_dim": 2.5}, "gan.dcgan.z_dim: Input should be a valid integer"),
    (NoiseConfig, "gan.dcgan", {"z_dim": 2.0},
     "gan.dcgan.z_dim: Input should be a valid integer"),  # strict
    (GanConfig, "gan", {"steps": True}, "gan.steps: Input should be a valid integer"),
    (ScoreConfig, "score", {"features": "inception"}, "score.features: Input should be a valid list"),
    (ScoreConfig, "score", {"features": ["scorer", "clip"]},
     "score.features.1: Input should be 'scorer' or 'inception'"),
    (STRATEGIES.get("confidence").config, "select.confidence", {"require_correct": "yes"},
     "select.confidence.require_correct: Input should be a valid boolean"),
    (STRATEGIES.get("confidence").config, "select.confidence", {"require_correct": 1},
     "select.confidence.require_correct: Input should be a valid boolean"),
    (ReportConfig, "report", {"confidence_level": "0.95"},
     "report.confidence_level: Input should be a valid number"),
])
def test_strict_types_with_readable_messages(cls, section, value, expected):
    assert expected in error_of(cls, value, section)


def test_ints_are_accepted_where_floats_are_expected():
    assert parse(GanConfig, {"lr_g": 1}, "gan").lr_g == 1.0


def test_a_section_that_is_not_a_mapping_is_named():
    msg = error_of(GanConfig, [1, 2], "gan")  # type: ignore[arg-type]
    assert msg == "params.yaml: gan: expected a mapping, got list"
    assert parse(GanConfig, None, "gan") == GanConfig()  # an empty section takes the defaults


@pytest.mark.parametrize(("cls", "section", "value", "words"), [
    (DataConfig, "data", {"source": "d", "real_per_class": 5, "real_fraction": 0.5},
     ["data", "real_per_class", "real_fraction"]),
    (DataConfig, "data", {"source": "d", "real_per_class": 0}, ["data", "real_per_class"]),
    (DataConfig, "data", {"source": "d", "val_fraction": 0.5, "test_fraction": 0.5},
     ["data", "val_fraction + test_fraction"]),
    (ClassifierConfig, "classifier", {"lr": 0.0}, ["classifier", "lr", "must be > 0"]),
    (GanConfig, "gan", {"arch": "no;gan"}, ["gan", "arch", "no;gan"]),
    (GanConfig, "gan", {"n_critic": 0}, ["gan", "n_critic"]),
    (STRATEGIES.get("threshold").config, "select.threshold", {"min_confidence": 1.5},
     ["select.threshold", "min_confidence"]),
    (GenerateConfig, "generate", {"pool_multiplier": 0.5}, ["generate", "pool_multiplier"]),
    (ReportConfig, "report", {"confidence_level": 1.0}, ["report", "confidence_level"]),
])
def test_value_checks_name_the_section_and_key(cls, section, value, words):
    msg = error_of(cls, value, section)
    assert msg.startswith(f"params.yaml: {section}")
    for w in words:
        assert w in msg


def test_data_config_requires_a_source():
    assert "data.source" in error_of(DataConfig, {}, "data")


# --------------------------------------------------------------------------------------------
# StudyConfig: the grid
# --------------------------------------------------------------------------------------------

STUDY = {"strategies": ["random", "confidence"], "ratios": [0.5, 1, 2], "seeds": [0, 1],
         "targets": ["typeset"], "synthetic_only_ratio": 2}


def test_study_accepts_a_valid_grid():
    cfg = parse(StudyConfig, STUDY, "study")
    assert cfg.ratios == [0.5, 1.0, 2.0] and cfg.synthetic_only_ratio == 2.0


@pytest.mark.parametrize(("change", "words"), [
    ({"strategies": ["random", "be st"]}, ["strategies", "'be st'", "not a usable name"]),
    ({"targets": ["x;rm -rf ~"]}, ["targets", "not a usable name"]),
    ({"strategies": ["random", "random"]}, ["strategies", "duplicate", "'random'"]),
    ({"ratios": [1, 2, 1], "synthetic_only_ratio": 1}, ["ratios", "duplicate"]),
    ({"seeds": [0, 1, 0]}, ["seeds", "duplicate"]),
    ({"targets": ["typeset", "typeset"]}, ["targets", "duplicate"]),
    ({"ratios": [0, 2]}, ["ratios", "positive"]),
    ({"ratios": [-1, 2]}, ["ratios", "positive"]),
    ({"ratios": [float("inf"), 2]}, ["study.ratios.0", "finite"]),
    ({"ratios": [float("nan"), 2]}, ["study.ratios.0", "finite"]),
    ({"synthetic_only_ratio": 3}, ["synthetic_only_ratio", "must be one of ratios"]),
    ({"strategies": []}, ["must not be empty"]),
    ({"seeds": [-1]}, ["seeds", ">= 0"]),
])
def test_study_rejects_a_bad_grid(change, words):
    msg = error_of(StudyConfig, {**STUDY, **change}, "study")
    assert msg.startswith("params.yaml: study")
    for w in words:
        assert w in msg


def test_study_strategy_none_is_not_listed():
    # The real-only baseline is always trained; "none" is not a selection strategy.
    assert "'none' is the real-only baseline" in error_of(StudyConfig,
                                                           {**STUDY, "strategies": ["none"]},
                                                           "study")


# --------------------------------------------------------------------------------------------
# Loading and read_params
# --------------------------------------------------------------------------------------------


@pytest.fixture
def params_file(tmp_path) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({
        "device": "cpu",
        "gan": {"lr_g": 0.001, "steps": 10},
        "select": {"threshold": {"min_confidence": 0.8, "seed": 1}, "random": {"seed": 0}},
        "study": {"seeds": [0, 1], "ratios": [1]},
    }))
    return path


def test_read_params_returns_only_the_declared_keys(params_file):
    out = read_params(["gan.lr_g", "select.threshold", "study.seeds"], params_file)
    assert out == {"gan": {"lr_g": 0.001}, "select": {"threshold": {"min_confidence": 0.8,
                                                                    "seed": 1}},
                   "study": {"seeds": [0, 1]}}
    assert read_params(["device"], params_file) == {"device": "cpu"}
    assert read_params([], params_file) == {}


@pytest.mark.parametrize(("declared", "missing"), [
    (["gan.lr_d"], "'gan.lr_d'"),
    (["nosection.key"], "'nosection'"),
    (["select.realism.require_correct"], "'select.realism'"),
    (["gan.lr_g.deeper"], "'gan.lr_g.deeper'"),
])
def test_read_params_names_a_missing_key_and_the_file(params_file, declared, missing):
    with pytest.raises(ParamsError) as info:
        read_params(["gan.lr_g", *declared], params_file)
    msg = str(info.value)
    assert msg.startswith(str(params_file)) and f"missing key {missing}" in msg


def test_load_params_errors_name_the_file(tmp_path):
    with pytest.raises(ParamsError, match=re.escape(str(tmp_path / "nope.yaml"))):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("gan: [unclosed\n")
    with pytest.raises(ParamsError, match=rf"{re.escape(str(bad))}: not valid YAML"):
        load_params(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string\n")
    with pytest.raises(ParamsError, match="mapping"):
        load_params(scalar)


# --------------------------------------------------------------------------------------------
# The repo's params files
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PARAMS_FILES, ids=[p.name for p in PARAMS_FILES])
def test_repo_params_files_validate(path):
    parsed = validate_params(load_params(path), str(path))
    assert {"study", "data", "datasets", "gan", "classifier", "select"} <= set(parsed)


def test_score_rejects_a_kid_subset_size_below_two():
    msg = error_of(ScoreConfig, {"kid_subset_size": 1}, "score")
    assert "kid_subset_size" in msg
