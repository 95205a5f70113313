"""Data sets: the W/A/V split and the patch dataset."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import data

from hinas.data.datasets import PatchDataset, split_images
from hinas.data.degradations import build_degradation, imresize
from hinas.errors import HinasError

# --- W / A / V split ---------------------------------------------------------------------------


@pytest.mark.parametrize("n,sizes", [(300, (147, 147, 6)), (201, (99, 98, 4)), (3, (1, 1, 1))])
def test_split_sizes_disjoint_deterministic(n, sizes):
    paths = [Path(f"img{k:03d}.png") for k in range(n)]
    w, a, v = split_images(paths, seed=7)
    assert (len(w), len(a), len(v)) == sizes
    assert set(w) | set(a) | set(v) == set(paths)
    assert not (set(w) & set(a) or set(w) & set(v) or set(a) & set(v))
    assert split_images(list(reversed(paths)), seed=7) == (w, a, v)  # input order irrelevant
    if n > 10:
        assert split_images(paths, seed=8) != (w, a, v)


def test_split_errors():
    with pytest.raises(HinasError, match="at least 3 training images"):
        split_images(["a.png", "b.png"], seed=0)
    with pytest.raises(HinasError, match="val_fraction"):
        split_images(["a.png", "b.png", "c.png"], seed=0, val_fraction=1.5)


# --- PatchDataset ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gray_images():
    return {"camera.png": data.camera()[..., None], "moon.png": data.moon()[..., None]}


@pytest.fixture(scope="module")
def rgb_images():
    return {"astronaut.png": data.astronaut(), "coffee.png": data.coffee()}


def test_patches_deterministic_per_seed_epoch_index(gray_images):
    ds = PatchDataset(gray_images, 48, build_degradation("denoise", sigma=25), length=10, seed=3)
    lq, gt = ds[4]
    again = PatchDataset(gray_images, 48, build_degradation("denoise", sigma=25), length=10, seed=3)
    torch.testing.assert_close(again[4], (lq, gt), rtol=0, atol=0)
    assert not torch.equal(ds[5][1], gt)
    ds.set_epoch(1)
    assert not torch.equal(ds[4][1], gt)
    ds.set_epoch(0)
    torch.testing.assert_close(ds[4], (lq, gt), rtol=0, atol=0)
    other_seed = PatchDataset(gray_images, 48, ds.degradation, length=10, seed=4)
    assert not torch.equal(other_seed[4][1], gt)


def test_denoise_patches(gray_images):
    ds = PatchDataset(gray_images, 64, build_degradation("denoise", sigma=50), length=8)
    lq, gt = ds[0]
    assert lq.shape == gt.shape == (1, 64, 64) and lq.dtype == gt.dtype == torch.float32
    assert 0 <= gt.min() and gt.max() <= 1
    noise = torch.stack([ds[i][0] - ds[i][1] for i in range(8)])
    assert abs(noise.std().item() * 255 - 50) < 1.5  # unclipped noise of sigma 50
    with pytest.raises(IndexError):
        ds[8]


@pytest.mark.parametrize("scale,crop", [(2, 64), (3, 63), (4, 64)])
def test_sr_patches(rgb_images, scale, crop):
    ds = PatchDataset(rgb_images, 64, build_degradation("sr", scale=scale), length=4, seed=1)
    assert ds.crop == crop  # rounded down to a multiple of the scale
    lq, gt = ds[2]
    assert gt.shape == (3, crop, crop) and lq.shape == (3, crop // scale, crop // scale)
    expected = imresize(gt.numpy().transpose(1, 2, 0).astype(np.float64), 1 / scale)
    np.testing.assert_allclose(lq.numpy().transpose(1, 2, 0), expected, atol=1e-6)


def test_augmentation_covers_rotations_and_flips():
    img = data.astronaut()[200:232, 180:212]  # exactly one crop: every sample is a transform of it
    ds = PatchDataset([img], 32, build_degradation("denoise", sigma=0), length=64)
    variants = {}
    for k in range(4):
        rot = np.rot90(img, k)
        variants[rot.tobytes()] = f"rot{k * 90}"
        variants[rot[:, ::-1].tobytes()] = f"rot{k * 90}+flip"
    seen = set()
    for i in range(len(ds)):
        gt = (ds[i][1].numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)
        seen.add(variants[np.ascontiguousarray(gt).tobytes()])
    assert len(seen) == 8  # the 4 rotations, each plain and mirrored
    plain = PatchDataset([img], 32, ds.degradation, augment=False, length=4)
    np.testing.assert_array_equal(plain[0][1].numpy().transpose(1, 2, 0), img / np.float32(255))


def test_patch_dataset_errors(rgb_images):
    small = {**rgb_images, "tiny.png": data.astronaut()[:30, :40]}
    with pytest.raises(
        HinasError, match=r"^tiny.png: image is 40x30, smaller than the 48x48 crop$"
    ):
        PatchDataset(small, 48, build_degradation("sr", scale=2))
    with pytest.raises(HinasError, match="image #1: has 1 channels"):
        PatchDataset([data.astronaut(), data.camera()], 48, build_degradation("sr", scale=2))


def test_dataloader_workers_do_not_change_samples(gray_images):
    ds = PatchDataset(gray_images, 32, build_degradation("denoise", sigma=[15, 50]), length=12)
    ds.set_epoch(2)

    def batches(workers):
        loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=workers)
        return [b for b in loader]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        single, multi = batches(0), batches(2)
    for (lq0, gt0), (lq1, gt1) in zip(single, multi, strict=True):
        assert torch.equal(lq0, lq1) and torch.equal(gt0, gt1)
