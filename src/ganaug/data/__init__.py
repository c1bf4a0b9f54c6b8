"""Datasets: the prepared format every stage reads (:mod:`ganaug.data.base`).

Deliberately light: stages that only read prepared files import this package without the dataset
kinds (PIL, torchvision, CSV parsing), so editing a kind's code reruns only ``prepare``. The
kinds, their registry and preparation live in :mod:`ganaug.data.prepare`.
"""

from ganaug.data.base import SPLITS, Prepared, RawDataset, load_prepared, save_prepared

__all__ = ["SPLITS", "Prepared", "RawDataset", "load_prepared", "save_prepared"]
