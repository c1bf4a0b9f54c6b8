"""Every params section and the params reader in one namespace, for code outside the pipeline
(tests, notebooks, a lab's scripts). The pipeline's own modules import :mod:`ganaug.params` and
the :mod:`ganaug.configs` module of each section they read instead: ``dvc.yaml`` lists the files
a stage imports, and importing this module would make every stage depend on every section.
"""

from ganaug.configs.data import DataConfig
from ganaug.configs.gan import AUGMENT_OPS, GanConfig
from ganaug.configs.generate import GenerateConfig
from ganaug.configs.refine import REFINE_BASE, RefineConfig
from ganaug.configs.report import ReportConfig
from ganaug.configs.score import ScoreConfig
from ganaug.configs.study import PrimaryConfig, StudyConfig
from ganaug.configs.train import ClassifierConfig, ScorerConfig, TrainConfig
from ganaug.errors import ParamsError
from ganaug.params import (
    DEVICE_NAME,
    SAFE_NAME,
    STRICT,
    check_device,
    check_name,
    check_threads,
    get_key,
    load_params,
    parse,
    read_params,
)

__all__ = [
    "AUGMENT_OPS", "DEVICE_NAME", "REFINE_BASE", "SAFE_NAME", "STRICT", "ClassifierConfig",
    "DataConfig", "GanConfig",
    "GenerateConfig", "ParamsError", "PrimaryConfig", "RefineConfig", "ReportConfig",
    "ScoreConfig", "ScorerConfig", "StudyConfig", "TrainConfig", "check_device", "check_name",
    "check_threads", "get_key", "load_params", "parse", "read_params",
]
