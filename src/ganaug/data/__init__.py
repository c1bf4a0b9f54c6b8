"""Datasets: the prepared format, the registry of dataset kinds, and preparation."""

# Importing a kind's module registers it.
from ganaug.data import bundled as _bundled  # noqa: F401
from ganaug.data import fer2013_csv as _fer2013_csv  # noqa: F401
from ganaug.data import image_folder as _image_folder  # noqa: F401
from ganaug.data import npz as _npz  # noqa: F401
from ganaug.data import torchvision_datasets as _torchvision_datasets  # noqa: F401
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
