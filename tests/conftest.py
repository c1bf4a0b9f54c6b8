"""Shared fixtures. End-to-end fixtures (a tiny study in a temporary git repo) live in
tests/e2e.py and are imported here so every test module can use them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# Tests run on the CPU, whatever the machine has.
os.environ.setdefault("GANAUG_DEVICE", "cpu")


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT
