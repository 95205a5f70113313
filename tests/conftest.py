"""Shared test fixtures: where the real image sets are (SPEC §7)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    """The shared data folder: ``$HINAS_DATA``, else ``../shared/data`` next to the repository."""
    return Path(os.environ.get("HINAS_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture
def dataset():
    """``dataset("Set5/HR")`` -> folder of that image set, or skip the test saying it is absent."""

    def get(name: str) -> Path:
        folder = data_root() / name
        if not folder.is_dir():
            pytest.skip(f"data set {name} not found at {folder} (set HINAS_DATA)")
        return folder

    return get
