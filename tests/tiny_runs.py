"""Helpers of the train / evaluate / restore / demo tests: folders of real photographs (shipped with
scikit-image) and tiny trained models made through the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from skimage import data

from hinas.cli import main
from hinas.config import SpaceConfig, TaskConfig
from hinas.data.images import save_image
from hinas.runtime.scoring import center_crop
from hinas.space.genotype import Genotype

GRAY_PHOTOS = ("camera", "coins", "moon", "brick", "grass", "gravel")
RGB_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "retina")


def write_photos(folder: Path, names: tuple[str, ...] = GRAY_PHOTOS, size: int = 96,
                 suffix: str = ".png") -> Path:
    """Central `size`×`size` crops of scikit-image photographs in `folder`, as PNGs (`suffix`
    ".jpg": as JPEGs, the files BSDS500 ships)."""
    for name in names:
        img = np.asarray(getattr(data, name)())
        save_image(folder / f"{name}{suffix}",
                   center_crop(img if img.ndim == 3 else img[..., None], size))
    return folder


def tiny_genotype(task: TaskConfig) -> Genotype:
    """A small hand-written genotype (2 layers of 2-node cells, 3×3 ops only: with the stem and
    the tail its receptive field has a radius of 8 px)."""
    cell = [[(0, "conv_3x3"), (1, "sep_conv_3x3")], [(1, "skip_connect"), (2, "conv_3x3")]]
    return Genotype(task, SpaceConfig(layers=2, nodes=2, width=2), [0, 1], [cell, cell])


def train_tiny(out: Path, data_dir: Path, genotype: Genotype, *extra: str) -> Path:
    """Train `genotype` at the tiny preset through `hinas train`; returns the run folder."""
    genotype.save(out.parent / f"{out.name}-genotype.json")
    rc = main(["train", "--genotype", str(out.parent / f"{out.name}-genotype.json"),
               "--data", str(data_dir), "--out", str(out), "--preset", "tiny", "--quiet",
               *extra])
    assert rc == 0
    return out
