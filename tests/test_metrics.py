"""Metrics: PSNR/SSIM conventions, cross-checked with scikit-image and the bicubic SR anchors."""

import json

import numpy as np
import pytest
from PIL import Image
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from hinas.data.degradations import bicubic_sr, sr_pair_for_image
from hinas.data.images import list_images
from hinas.errors import HinasError
from hinas.measures.metrics import Convention, psnr, rgb_to_y, ssim, to_uint8


def _sk_ssim(a, b, **kw):
    return structural_similarity(
        a,
        b,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
        **kw,
    )


@pytest.fixture(scope="module")
def pair_rgb():
    clean = data.astronaut()[100:260, 150:330].astype(np.float64)
    noisy = clean + np.random.default_rng(0).normal(0, 20, clean.shape)
    return to_uint8(noisy), clean.astype(np.uint8)


@pytest.fixture(scope="module")
def pair_gray():
    clean = data.camera()[:200, 100:300].astype(np.float64)
    noisy = clean + np.random.default_rng(1).normal(0, 15, clean.shape)
    return to_uint8(noisy), clean.astype(np.uint8)


def test_rgb_to_y_bt601():
    px = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 0, 255]]], dtype=np.uint8)
    np.testing.assert_allclose(rgb_to_y(px), [[16, 235, 16 + 65.481, 16 + 24.966]], atol=1e-9)


def test_to_uint8_clips_and_rounds_half_up():
    x = np.array([-3.0, 0.49, 0.5, 1.5, 2.5, 254.6, 300.0])
    np.testing.assert_array_equal(to_uint8(x), [0, 0, 1, 2, 3, 255, 255])
    assert to_uint8(x).dtype == np.uint8


def test_psnr_matches_skimage(pair_rgb, pair_gray):
    for img, ref in (pair_rgb, pair_gray):
        expected = peak_signal_noise_ratio(ref, img, data_range=255)
        assert psnr(img, ref) == pytest.approx(expected, abs=1e-10)
        cropped = peak_signal_noise_ratio(ref[4:-4, 4:-4], img[4:-4, 4:-4], data_range=255)
        assert psnr(img, ref, crop_border=4) == pytest.approx(cropped, abs=1e-10)
    assert psnr(pair_gray[1], pair_gray[1]) == float("inf")


def test_ssim_matches_skimage_valid_region(pair_rgb, pair_gray):
    img, ref = pair_gray
    # skimage's mssim is the mean of its full map with the 5-pixel window border removed,
    # which is exactly the 'valid' region of BasicSR / MATLAB ssim_index
    mssim, full = _sk_ssim(img.astype(float), ref.astype(float), full=True)
    assert ssim(img, ref) == pytest.approx(full[5:-5, 5:-5].mean(), abs=1e-9)
    assert ssim(img, ref) == pytest.approx(mssim, abs=1e-9)
    assert ssim(img, ref, crop_border=3) == pytest.approx(
        _sk_ssim(img[3:-3, 3:-3].astype(float), ref[3:-3, 3:-3].astype(float)), abs=1e-9
    )
    img, ref = pair_rgb  # RGB: mean over channels
    expected = _sk_ssim(img.astype(float), ref.astype(float), channel_axis=2)
    assert ssim(img, ref) == pytest.approx(expected, abs=1e-9)
    assert ssim(ref, ref) == pytest.approx(1.0, abs=1e-12)


def test_y_channel_and_gray_images(pair_rgb, pair_gray):
    img, ref = pair_rgb
    y_img, y_ref = rgb_to_y(img), rgb_to_y(ref)
    assert psnr(img, ref, 2, test_y_channel=True) == pytest.approx(psnr(y_img, y_ref, 2))
    assert ssim(img, ref, 2, test_y_channel=True) == pytest.approx(ssim(y_img, y_ref, 2))
    gray, gref = pair_gray  # a gray image is scored on its own values (Set14 bridge)
    assert psnr(gray, gref, test_y_channel=True) == psnr(gray, gref)
    assert psnr(gray[..., None], gref[..., None], test_y_channel=True) == psnr(gray, gref)
    assert ssim(gray[..., None], gref[..., None], test_y_channel=True) == ssim(gray, gref)


def test_metric_input_errors(pair_gray):
    img, ref = pair_gray
    with pytest.raises(ValueError, match="differs"):
        psnr(img, ref[:-1])
    with pytest.raises(ValueError, match="smaller than the 11px window"):
        ssim(img[:8, :8], ref[:8, :8])


def test_convention_describes_itself_and_scores(pair_rgb):
    sr = Convention.for_task("sr", scale=4)
    assert (sr.test_y_channel, sr.crop_border) == (True, 4)
    assert "Y channel" in sr.describe() and "crop 4px" in sr.describe()
    den = Convention.for_task("denoise")
    assert (den.test_y_channel, den.crop_border) == (False, 0)
    assert "not clipped" in den.describe()
    assert (
        "clipped and rounded"
        in Convention.for_task("denoise", noise_variant="quantized").describe()
    )
    json.dumps(sr.as_dict())
    img, ref = pair_rgb
    scores = sr.score(img.astype(float) + 0.3, ref)  # the output is rounded before scoring
    assert scores["psnr"] == psnr(img, ref, 4, True)
    assert scores["ssim"] == ssim(img, ref, 4, True)
    with pytest.raises(HinasError, match="task.name must be one of camera, denoise"):
        Convention.for_task("deblur")
    with pytest.raises(ValueError, match="unknown noise variant"):
        Convention.for_task("denoise", noise_variant="rounded")


# Bicubic baseline of the SR literature (docs/metrics.md, paper Table 12 and the SRCNN/VDSR tables):
# (scale, set) -> (PSNR dB, SSIM), Y channel, `scale` border pixels cropped.
ANCHORS = {
    (2, "Set5"): (33.66, 0.9299),
    (2, "Set14"): (30.24, 0.8688),
    (4, "Set5"): (28.42, 0.8104),
    (4, "Set14"): (26.00, 0.7027),
}


@pytest.mark.parametrize("scale,name", sorted(ANCHORS))
def test_bicubic_sr_anchors(dataset, scale, name):
    folder = dataset(f"{name}/HR")
    convention = Convention.for_task("sr", scale=scale)
    scores = []
    for path in list_images(folder):
        with Image.open(path) as im:
            hr = np.asarray(im)  # Set14 bridge.png stays gray: scored on its gray values
        hr, lr = sr_pair_for_image(hr, scale)  # LR rounded to uint8, like MATLAB
        scores.append(convention.score(bicubic_sr(lr, scale), hr))
    expected_psnr, expected_ssim = ANCHORS[scale, name]
    assert np.mean([s["psnr"] for s in scores]) == pytest.approx(expected_psnr, abs=0.05)
    assert np.mean([s["ssim"] for s in scores]) == pytest.approx(expected_ssim, abs=0.002)
