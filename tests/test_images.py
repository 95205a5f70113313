"""Image files: folders, decoding (gray/RGB, 8/16-bit), the compact read for restoration, and
atomic saving."""

import subprocess
import sys

import numpy as np
import png
import pytest
from PIL import Image
from skimage import data

from hinas.data.images import (
    list_images,
    load_image,
    load_images,
    read_input,
    save_image,
    to_gray,
)
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
    with pytest.raises(HinasError, match="16-bit images need"):
        save_image(tmp_path / "c16.jpg", rgb16, bit_depth=16)
    with pytest.raises(HinasError, match="unknown image extension"):
        save_image(tmp_path / "x.gif2", x)
    with pytest.raises(HinasError, match="uint16 array cannot be saved at 8 bits"):
        save_image(tmp_path / "x.png", rgb16)




# --- 16-bit RGB PNG (read with pypng: Pillow would keep only the high bytes) --------------------


def _rgb16(h: int = 24, w: int = 30) -> np.ndarray:
    """Real 16-bit RGB values whose low bytes matter: round(v / 257) and v >> 8 differ often."""
    return (data.astronaut()[:h, :w].astype(np.uint16) * 257 + 200).astype(np.uint16)


def _write_png16(path, arr: np.ndarray, alpha: np.ndarray | None = None) -> None:
    """Write a 16-bit PNG with pypng directly (not through hinas), RGB or gray, with alpha."""
    h, w, c = arr.shape
    planes = arr if alpha is None else np.dstack([arr, alpha])
    with open(path, "wb") as f:
        png.Writer(w, h, greyscale=c == 1, alpha=alpha is not None, bitdepth=16).write(
            f, planes.reshape(h, -1).tolist())


def test_load_image_16bit_rgb_png_is_rounded_like_gray(tmp_path):
    rgb16 = _rgb16()
    _write_png16(tmp_path / "c16.png", rgb16)
    rounded = np.floor(rgb16 / 257 + 0.5).astype(np.uint8)
    assert (rounded != rgb16 >> 8).mean() > 0.3  # the test tells the two reductions apart
    np.testing.assert_array_equal(load_image(tmp_path / "c16.png", 3), rounded)
    np.testing.assert_array_equal(load_image(tmp_path / "c16.png", 1),
                                  np.floor(to_gray(rgb16.astype(np.float64)) / 257 + 0.5))
    _write_png16(tmp_path / "c16a.png", rgb16, alpha=np.full(rgb16.shape[:2], 9, np.uint16))
    np.testing.assert_array_equal(load_image(tmp_path / "c16a.png", 3), rounded)  # alpha dropped


def test_read_input_keeps_16bit_rgb_and_8bit_as_decoded(tmp_path):
    rgb16 = _rgb16()
    _write_png16(tmp_path / "c16.png", rgb16)
    arr, depth = read_input(tmp_path / "c16.png")
    assert depth == 16 and arr.dtype == np.uint16
    np.testing.assert_array_equal(arr, rgb16)
    Image.fromarray(data.astronaut()[:20, :20]).save(tmp_path / "c8.png")
    arr, depth = read_input(tmp_path / "c8.png")
    assert depth == 8 and arr.dtype == np.uint8
    np.testing.assert_array_equal(arr, data.astronaut()[:20, :20])


def test_save_image_16bit_rgb_round_trip_is_exact(tmp_path):
    rgb16 = np.random.default_rng(0).integers(0, 65536, (17, 23, 3)).astype(np.uint16)
    save_image(tmp_path / "c16.png", rgb16, bit_depth=16)
    arr, depth = read_input(tmp_path / "c16.png")
    assert depth == 16
    np.testing.assert_array_equal(arr, rgb16)
    with open(tmp_path / "c16.png", "rb") as f:  # a standard PNG: pypng reads it the same
        w, h, rows, info = png.Reader(file=f).read()
        assert (w, h, info["bitdepth"], info["planes"]) == (23, 17, 16, 3)
        np.testing.assert_array_equal(np.array([list(r) for r in rows]).reshape(17, 23, 3), rgb16)


def test_16bit_rgb_png_limit_and_corruption(tmp_path, monkeypatch):
    _write_png16(tmp_path / "c16.png", _rgb16())
    raw = (tmp_path / "c16.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(raw[: len(raw) // 2])  # IDAT cut short
    with pytest.raises(HinasError, match=f"^{tmp_path / 'cut.png'}: cannot read image"):
        load_image(tmp_path / "cut.png", 3)
    with pytest.raises(HinasError, match=f"^{tmp_path / 'cut.png'}: cannot read image"):
        read_input(tmp_path / "cut.png")
    monkeypatch.setenv("HINAS_MAX_PIXELS", "500")
    with pytest.raises(HinasError, match="30x24 image .* is over the limit"):
        read_input(tmp_path / "c16.png")


def test_8_bit_images_need_no_pypng(image_folder, tmp_path):
    """pypng is imported only for 16-bit RGB(A) PNG: a machine without it (no package index)
    reads and writes every other image, and a 16-bit RGB PNG is then a clear ImportError."""
    script = f"""
import sys
sys.modules["png"] = None  # import png fails
import numpy as np
import hinas.cli, hinas.jobs.train
from hinas.data.images import list_images, load_images, save_image, load_image
images = load_images(list_images({str(image_folder)!r}), 3)
assert len(images) == 3  # 8-bit PNG, JPEG and BMP
save_image({str(tmp_path / "rgb.png")!r}, np.zeros((8, 8, 3), np.uint8))
assert load_image({str(tmp_path / "rgb.png")!r}, 3).shape == (8, 8, 3)
try:
    save_image({str(tmp_path / "wide.png")!r}, np.zeros((8, 8, 3), np.uint16), bit_depth=16)
except ImportError:
    print("16-bit needs pypng")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "16-bit needs pypng"
