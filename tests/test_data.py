"""Data: image folders, loading/saving, the W/A/V split, and the patch dataset."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from hinas.data import (
    PatchDataset,
    list_images,
    load_image,
    load_images,
    save_image,
    split_images,
)
from hinas.degradations import build_degradation, imresize
from hinas.errors import HinasError

# --- folders and files -------------------------------------------------------------------------


@pytest.fixture
def image_folder(tmp_path):
    """A small folder tree of real images, with odd-case extensions and a non-image file."""
    (tmp_path / "sub").mkdir()
    Image.fromarray(data.astronaut()[:80, :96]).save(tmp_path / "b.PNG")
    Image.fromarray(data.camera()[:70, :90]).save(tmp_path / "sub" / "a.JpG")
    Image.fromarray(data.coffee()[:66, :77]).save(tmp_path / "c.bmp")
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


def test_list_images_recursive_sorted_case_insensitive(image_folder):
    paths = list_images(image_folder)
    assert [p.relative_to(image_folder).as_posix() for p in paths] == [
        "b.PNG",
        "c.bmp",
        "sub/a.JpG",
    ]


def test_list_images_errors(tmp_path):
    with pytest.raises(HinasError, match=f"^{tmp_path / 'nope'}: no such folder$"):
        list_images(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(HinasError, match=r"empty: no images \(png/jpg/bmp/tif\) found$"):
        list_images(tmp_path / "empty")


def test_load_image_conversions(image_folder):
    rgb = load_image(image_folder / "b.PNG", channels=3)
    assert rgb.shape == (80, 96, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb, data.astronaut()[:80, :96])
    gray = load_image(image_folder / "b.PNG", channels=1)
    expected = np.asarray(Image.fromarray(data.astronaut()[:80, :96]).convert("L"))
    np.testing.assert_array_equal(gray[..., 0], expected)  # ITU-R 601-2 luma
    from_gray = load_image(image_folder / "sub" / "a.JpG", channels=3)
    assert from_gray.shape == (70, 90, 3)
    np.testing.assert_array_equal(from_gray[..., 0], from_gray[..., 2])
    with pytest.raises(HinasError, match="channels must be 1"):
        load_image(image_folder / "b.PNG", channels=2)


def test_load_image_16bit_and_alpha(tmp_path):
    wide = (data.camera()[:40, :50].astype(np.uint16) * 257 + 100).astype(np.uint16)
    Image.fromarray(wide).save(tmp_path / "g16.png")
    loaded = load_image(tmp_path / "g16.png", channels=1)[..., 0]
    np.testing.assert_array_equal(loaded, np.floor(wide / 257 + 0.5).astype(np.uint8))
    rgba = np.dstack([data.astronaut()[:20, :20], np.full((20, 20), 7, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(load_image(tmp_path / "rgba.png", 3), rgba[..., :3])


def test_corrupt_file_is_named(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    with pytest.raises(HinasError, match=f"^{bad}: cannot read image"):
        load_image(bad, channels=3)


def test_load_images_skips_unreadable_with_warning(image_folder):
    bad = image_folder / "zz_broken.png"
    bad.write_bytes(b"not a png at all")
    with pytest.warns(UserWarning, match="zz_broken.png: cannot read image"):
        images = load_images(list_images(image_folder), channels=3)
    assert [p.name for p in images] == ["b.PNG", "c.bmp", "a.JpG"]
    messages = []
    load_images([bad, image_folder / "c.bmp"], channels=1, warn=messages.append)
    assert len(messages) == 1 and "zz_broken.png" in messages[0]
    with pytest.raises(HinasError, match="none of the 1 images could be read"):
        load_images([bad], channels=3, warn=lambda m: None)


def test_load_images_too_small_for_crop(image_folder):
    with pytest.raises(HinasError, match=r"c.bmp: image is 77x66, smaller than the 72x72 crop$"):
        load_images(list_images(image_folder), channels=3, min_size=72)
    assert len(load_images(list_images(image_folder), channels=3, min_size=64)) == 3


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif"])
def test_save_image_roundtrip_and_atomic(tmp_path, ext):
    rgb = data.astronaut()[:33, :41]
    path = tmp_path / "out" / f"x{ext}"
    save_image(path, rgb)
    np.testing.assert_array_equal(load_image(path, 3), rgb)
    save_image(path, rgb[..., 0])  # replaces the existing file
    np.testing.assert_array_equal(load_image(path, 1)[..., 0], rgb[..., 0])
    assert sorted(p.name for p in path.parent.iterdir()) == [f"x{ext}"]  # no temp file left


def test_save_image_float_and_16bit(tmp_path):
    x = np.linspace(-0.1, 1.1, 30 * 20).reshape(30, 20)
    save_image(tmp_path / "f.png", x)
    expected8 = np.floor(np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "f.png")), expected8)
    save_image(tmp_path / "g16.png", x, bit_depth=16)
    expected16 = np.floor(np.clip(x, 0, 1) * 65535 + 0.5)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "g16.png")), expected16)
    rgb16 = (data.astronaut()[:12, :10].astype(np.uint16) * 257 + 3).astype(np.uint16)
    save_image(tmp_path / "c16.png", rgb16, bit_depth=16)
    raw = (tmp_path / "c16.png").read_bytes()
    assert raw[24:26] == bytes([16, 2])  # IHDR: bit depth 16, colour type RGB
    with Image.open(tmp_path / "c16.png") as im:  # Pillow decodes 48-bit PNG to its high bytes
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), (rgb16 >> 8).astype(np.uint8))
    with pytest.raises(HinasError, match="16-bit images need"):
        save_image(tmp_path / "c16.jpg", rgb16, bit_depth=16)
    with pytest.raises(HinasError, match="unknown image extension"):
        save_image(tmp_path / "x.gif2", x)
    with pytest.raises(HinasError, match="uint16 array cannot be saved at 8 bits"):
        save_image(tmp_path / "x.png", rgb16)


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
