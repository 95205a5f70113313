"""Shared test fixtures: where the real image sets are (docs/data.md)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    """Under pytest-xdist, each worker's torch takes its share of the cores (not all of them
    each: the workers would fight over the cores)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


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


PHOTOS = ("camera", "astronaut", "coffee", "chelsea", "brick", "grass", "gravel", "moon", "rocket",
          "page", "text", "coins")
"""scikit-image photographs shipped inside the wheel (no download)."""


@pytest.fixture(scope="session")
def photo_folder(tmp_path_factory) -> Path:
    """A folder of real photographs (scikit-image's embedded images) as PNG files."""
    import skimage.data
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    for name in PHOTOS:
        Image.fromarray(getattr(skimage.data, name)()).save(folder / f"{name}.png")
    return folder
