"""Datasets: the prepared format, the registry of dataset kinds, and preparation."""

from ganaug.data import bundled as _bundled  # noqa: F401  (registers the bundled kinds)
from ganaug.data.base import (
    DATASET_KINDS,
    SPLITS,
    Prepared,
    RawDataset,
    load_prepared,
    register_dataset,
    save_prepared,
)
from ganaug.data.prepare import parse_dataset_config, prepare

__all__ = [
    "DATASET_KINDS",
    "SPLITS",
    "Prepared",
    "RawDataset",
    "load_prepared",
    "parse_dataset_config",
    "prepare",
    "register_dataset",
    "save_prepared",
]
