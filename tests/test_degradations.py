"""Degradations: MATLAB imresize, the degradation registry, reproducible evaluation inputs, real
JPEG encoding, camera (Poisson–Gaussian) noise."""

import io

import numpy as np
import pytest
from PIL import Image
from skimage import data

from hinas.config import TaskConfig
from hinas.data.degradations import (
    DEGRADATIONS,
    POISSON_MIN_A,
    BicubicDown,
    CameraNoise,
    GaussianNoise,
    JpegCompression,
    bicubic_sr,
    build_degradation,
    camera_noise_for_image,
    imresize,
    jpeg_roundtrip,
    modcrop,
    noisy_for_image,
    sr_pair_for_image,
    task_degradation,
)
from hinas.errors import HinasError

# --- imresize ----------------------------------------------------------------------------------


def test_imresize_matches_matlab_output():
    # MATLAB's own answer, quoted in https://stackoverflow.com/questions/17380407 (2013):
    # imresize([0 0 1 1 0], [1 10]) -> 0 -0.0234 -0.0703 0.2031 0.7969 1.0938 1.0938 0.7969
    # 0.2031 -0.0703. The last value shows MATLAB replicates the edge pixel (mirroring: -0.0938).
    out = imresize(np.array([[0, 0, 1, 1, 0]], dtype=float), 2)
    expected = [0, -0.0234, -0.0703, 0.2031, 0.7969, 1.0938, 1.0938, 0.7969, 0.2031, -0.0703]
    assert out.shape == (2, 10)
    np.testing.assert_allclose(out, [expected, expected], atol=5e-5)


def test_imresize_antialiased_downscale_by_hand():
    # imresize(1:4, 0.5), derived from MATLAB's contributions(): the antialiased kernel is
    # 0.5*cubic(0.5*d), width 8; output 1 sits at u = 1.5, taps at input -2..5 with normalised
    # weights [-3, -9, 29, 111, 111, 29, -9, -3] / 256; taps -2..0 clamp to pixel 1 and tap 5 to
    # pixel 4: (-3 - 9 + 29 + 111 + 2*111 + 3*29 - 4*9 - 4*3) / 256 = 389/256 = 1.51953125, and
    # by symmetry output 2 = 5 - 1.51953125.
    ramp = np.tile(np.arange(1.0, 5.0), (4, 1))
    out = imresize(ramp, 0.5)
    np.testing.assert_allclose(out, [[389 / 256, 5 - 389 / 256]] * 2, rtol=0, atol=1e-12)
    # separable: a 2-D ramp 4*i + j + 1 gives 4*r_a + c_b with r = c - 1
    ramp2d = np.arange(16.0).reshape(4, 4) + 1
    c = np.array([389 / 256, 5 - 389 / 256])
    np.testing.assert_allclose(imresize(ramp2d, 0.5), 4 * (c[:, None] - 1) + c[None, :], atol=1e-12)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_imresize_upscale_reproduces_linear_ramp_inside(scale):
    # Keys' cubic (a = -0.5) reproduces linear functions: output x sits at u = x/s + (1 - 1/s)/2
    n = 20
    out = imresize(np.arange(1.0, n + 1)[None, :].repeat(3, axis=0), scale)[1]
    u = np.arange(1, n * scale + 1) / scale + 0.5 * (1 - 1 / scale)
    inside = (u > 3) & (u < n - 2)
    np.testing.assert_allclose(out[inside], u[inside], atol=1e-12)


def test_imresize_sizes_constants_channels_and_no_clipping():
    rng = np.random.default_rng(0)
    assert imresize(np.zeros((10, 7)), 1 / 3).shape == (4, 3)  # ceil, like MATLAB
    assert imresize(np.zeros((5, 6, 3)), 4).shape == (20, 24, 3)
    np.testing.assert_allclose(imresize(np.full((9, 12), 77.0), 1 / 3), 77.0, atol=1e-12)
    np.testing.assert_allclose(imresize(np.full((9, 12), 77.0), 4), 77.0, atol=1e-12)
    rgb = rng.random((24, 18, 3))
    per_channel = np.stack([imresize(rgb[..., k], 0.5) for k in range(3)], axis=-1)
    np.testing.assert_allclose(imresize(rgb, 0.5), per_channel, atol=1e-12)
    step = np.zeros((8, 8), np.float32)
    step[:, 4:] = 255
    up = imresize(step, 2)
    assert up.dtype == np.float64 and up.min() < 0 and up.max() > 255  # overshoot kept


def test_bicubic_sr_is_imresize_and_modcrop():
    lr = data.camera()[:64, :48].astype(np.float64)
    np.testing.assert_array_equal(bicubic_sr(lr, 3), imresize(lr, 3))
    assert modcrop(np.zeros((13, 10, 3)), 4).shape == (12, 8, 3)
    assert modcrop(np.zeros((12, 9)), 3).shape == (12, 9)


# --- registry ----------------------------------------------------------------------------------

# options for every registered degradation; a new degradation must be added here to be tested
EXAMPLE_OPTIONS = {"denoise": {"sigma": 25}, "sr": {"scale": 3}, "jpeg": {"quality": [10, 40]},
                   "camera": {"a": [0.001, 0.02], "b": 0.0004}, "paired": {}}
SIMULATED = [t for t in DEGRADATIONS.names() if not getattr(DEGRADATIONS.get(t), "from_files",
                                                                 False)]
"""The degradations that make their inputs (the others read them from files: test_paired.py)."""


def test_every_degradation_has_example_options():
    assert set(EXAMPLE_OPTIONS) == set(DEGRADATIONS.names())


@pytest.mark.parametrize("task", SIMULATED)
def test_registered_degradation_contract(task):
    deg = build_degradation(task, **EXAMPLE_OPTIONS[task])
    hr = data.astronaut()[:48, :60].astype(np.float32) / 255
    lq = deg(hr, np.random.default_rng(0))
    assert lq.dtype == np.float32
    assert lq.shape == (*deg.lq_size(48, 60), 3)
    assert isinstance(deg.scale, int) and deg.scale >= 1
    np.testing.assert_array_equal(lq, deg(hr, np.random.default_rng(0)))


@pytest.mark.parametrize("task", SIMULATED)
def test_registered_degradation_test_pair(task):
    # built at its evaluation level from the task's config, as make_pairs does
    fields = {"sigma": [25.0], "scale": 3, "quality": [10, 40], "noise_a": [0.001, 0.02]}
    cfg = TaskConfig(name=task, channels=3, **fields).at_evaluation()
    deg = task_degradation(cfg)
    clean = data.astronaut()[:48, :60]
    lq, gt = deg.test_pair(clean, 0, "astronaut.png")
    assert gt.dtype == np.uint8 and lq.dtype == np.float64
    assert lq.shape == (*deg.lq_size(*gt.shape[:2]), 3)
    again, _ = deg.test_pair(clean, 0, "astronaut.png")
    np.testing.assert_array_equal(lq, again)  # the same input for every method and run


def test_build_degradation_errors():
    with pytest.raises(HinasError,
                       match="unknown task 'deblur'; known: camera, denoise, jpeg, paired, sr"):
        build_degradation("deblur", sigma=25)
    with pytest.raises(HinasError, match="missing option sigma"):
        build_degradation("denoise")
    with pytest.raises(HinasError, match="scale=4 does not apply"):
        build_degradation("denoise", sigma=25, scale=4)
    with pytest.raises(HinasError, match="sigma=25 does not apply"):
        build_degradation("sr", sigma=25, scale=4)
    with pytest.raises(HinasError, match="scale must be an integer >= 2"):
        build_degradation("sr", scale=1.5)
    with pytest.raises(HinasError, match="sigma must be"):
        build_degradation("denoise", sigma=-1)
    assert build_degradation("denoise", sigma=25, scale=1).scale == 1  # its own fixed scale


def test_gaussian_noise_statistics_and_reproducibility():
    hr = data.camera()[..., None].astype(np.float32) / 255
    deg = GaussianNoise(sigma=50)
    lq = deg(hr, np.random.default_rng(1))
    noise = lq - hr
    assert abs(noise.std() * 255 - 50) < 0.5 and abs(noise.mean()) * 255 < 0.5
    assert lq.min() < 0 and lq.max() > 1  # not clipped
    assert not np.allclose(noise * 255, np.round(noise * 255))  # not quantised
    np.testing.assert_array_equal(lq, deg(hr, np.random.default_rng(1)))
    assert not np.array_equal(lq, deg(hr, np.random.default_rng(2)))


def test_gaussian_noise_draws_sigma_from_list():
    hr = np.full((64, 64, 1), 0.5, np.float32)
    deg = GaussianNoise(sigma=[15, 50])
    stds = {round(float((deg(hr, np.random.default_rng(s)) - hr).std() * 255)) for s in range(20)}
    assert stds <= {14, 15, 16, 49, 50, 51} and min(stds) <= 16 and max(stds) >= 49


def test_bicubic_down_equals_imresize():
    hr = data.astronaut()[:96, :96].astype(np.float32) / 255
    lq = BicubicDown(4)(hr, np.random.default_rng(0))
    assert lq.shape == (24, 24, 3)
    np.testing.assert_allclose(lq, imresize(hr, 0.25), atol=1e-6)


# --- evaluation inputs -------------------------------------------------------------------------


def test_noisy_for_image_seeded_per_image():
    clean = data.camera()
    a = noisy_for_image(clean, 25, seed=0, image_key="01.png")
    np.testing.assert_array_equal(a, noisy_for_image(clean.astype(float), 25, 0, "01.png"))
    assert not np.array_equal(a, noisy_for_image(clean, 25, 0, "02.png"))
    assert not np.array_equal(a, noisy_for_image(clean, 25, 1, "01.png"))
    assert a.dtype == np.float64 and a.min() < 0 and a.max() > 255  # float, unclipped
    assert abs((a - clean).std() - 25) < 0.2
    clipped = noisy_for_image(clean, 25, 0, "01.png", clip=True)
    np.testing.assert_array_equal(clipped, np.clip(a, 0, 255))
    quantized = noisy_for_image(clean, 25, 0, "01.png", quantize=True)
    np.testing.assert_array_equal(quantized, np.floor(np.clip(a, 0, 255) + 0.5))


def test_sr_pair_for_image():
    hr = data.astronaut()[:101, :98]
    hr_c, lr = sr_pair_for_image(hr, 4)
    assert hr_c.shape == (100, 96, 3) and lr.shape == (25, 24, 3)
    assert hr_c.dtype == lr.dtype == np.uint8
    np.testing.assert_array_equal(lr, np.floor(np.clip(imresize(hr_c, 0.25), 0, 255) + 0.5))


def test_gaussian_noise_draws_sigma_uniformly_from_a_range():
    hr = np.full((64, 64, 1), 0.5, np.float32)
    deg = GaussianNoise(sigma=[0, 55], sampling="uniform")
    sigmas = [deg.draw_sigma(np.random.default_rng(s)) for s in range(400)]
    assert 0 <= min(sigmas) < 3 and 52 < max(sigmas) <= 55
    assert len(set(sigmas)) == 400  # continuous, not a few levels
    assert abs(np.mean(sigmas) - 27.5) < 2.5
    noisy = deg(hr, np.random.default_rng(7))
    assert abs((noisy - hr).std() * 255 - deg.draw_sigma(np.random.default_rng(7))) < 2
    for bad in ([10, 5], [25]):
        with pytest.raises(HinasError, match="range"):
            GaussianNoise(sigma=bad, sampling="uniform")
    with pytest.raises(HinasError, match="sampling must be"):
        GaussianNoise(sigma=25, sampling="gauss")


# --- JPEG --------------------------------------------------------------------------------------


def pillow_jpeg(img: np.ndarray, quality: int, **options) -> np.ndarray:
    """Pillow's own JPEG encode/decode of a uint8 HxW or HxWx3 image."""
    buffer = io.BytesIO()
    Image.fromarray(img).save(buffer, format="JPEG", quality=quality, **options)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())))


@pytest.mark.parametrize("photo", ["camera", "astronaut"])
def test_jpeg_is_pillows_own_encode_decode_of_the_crop(photo):
    crop = np.asarray(getattr(data, photo)())[100:164, 120:200]
    crop = crop if crop.ndim == 3 else crop[..., None]
    hr = crop.astype(np.float32) / 255
    lq = JpegCompression(quality=20)(hr, np.random.default_rng(0))
    expected = pillow_jpeg(crop[..., 0] if crop.shape[2] == 1 else crop, 20)
    assert lq.dtype == np.float32 and lq.shape == crop.shape
    np.testing.assert_array_equal(lq * 255, expected.reshape(crop.shape).astype(np.float32))
    assert np.abs(lq - hr).max() > 0.02  # real artefacts
    if crop.shape[2] == 3:  # colour: Pillow's default 4:2:0 chroma subsampling
        np.testing.assert_array_equal(jpeg_roundtrip(crop, 20),
                                      pillow_jpeg(crop, 20, subsampling="4:2:0"))
        assert not np.array_equal(jpeg_roundtrip(crop, 20),
                                  pillow_jpeg(crop, 20, subsampling="4:4:4"))


def test_jpeg_quality_range_is_drawn_per_crop():
    crop = data.camera()[200:264, 200:264, None]
    hr = crop.astype(np.float32) / 255
    deg = JpegCompression(quality=[10, 40])
    drawn = []
    for seed in range(60):
        quality = int(np.random.default_rng(seed).integers(10, 41))  # the draw of that crop
        drawn.append(quality)
        lq = deg(hr, np.random.default_rng(seed))
        np.testing.assert_array_equal(lq * 255, jpeg_roundtrip(crop, quality).astype(np.float32))
    assert min(drawn) <= 13 and max(drawn) >= 37 and len(set(drawn)) >= 15
    fixed = JpegCompression(quality=30)
    np.testing.assert_array_equal(fixed(hr, np.random.default_rng(1)),
                                  fixed(hr, np.random.default_rng(2)))


def test_jpeg_test_input_at_the_evaluation_quality():
    task = TaskConfig(name="jpeg", quality=[10, 40], channels=1)
    assert task.eval_quality == 25 and TaskConfig(name="jpeg", quality=[10, 41]).eval_quality == 26
    clean = data.camera()[:96, :96, None]
    lq, gt = task_degradation(task.at_evaluation()).test_pair(clean, 0, "camera.png")
    np.testing.assert_array_equal(gt, clean)
    np.testing.assert_array_equal(lq, jpeg_roundtrip(clean, 25).astype(np.float64))
    with pytest.raises(HinasError, match="test inputs are made at one level"):
        task_degradation(task).test_pair(clean, 0, "camera.png")  # a range, not its middle


@pytest.mark.parametrize("quality", [0, 101, 10.5, [40, 10], [10, 20, 30], "high", True])
def test_jpeg_quality_must_be_an_integer_from_1_to_100(quality):
    with pytest.raises(HinasError, match="jpeg: quality must be an integer from 1 to 100"):
        JpegCompression(quality=quality)


# --- camera noise ------------------------------------------------------------------------------


@pytest.mark.parametrize("a, b", [(0.01, 0.0004), (0.002, 0.0), (0.0, 0.001)])
def test_camera_noise_variance_is_a_x_plus_b_on_flat_images(a, b):
    deg = CameraNoise(a=a, b=b)
    for x in (0.1, 0.5, 0.9):
        flat = np.full((256, 256, 1), x, np.float32)
        noisy = deg(flat, np.random.default_rng(3)).astype(np.float64)
        assert noisy.dtype == np.float64 and abs(noisy.mean() - x) < 0.003
        assert noisy.var() == pytest.approx(a * x + b, rel=0.03)


def test_camera_noise_ranges_are_drawn_per_crop_and_test_inputs_are_seeded():
    flat = np.full((128, 128, 1), 0.5, np.float32)
    deg = CameraNoise(a=[0.001, 0.02], b=[0.0, 0.001])
    variances = [float(deg(flat, np.random.default_rng(s)).var()) for s in range(40)]
    assert min(variances) < 0.0015 and max(variances) > 0.009  # 0.5 a + b spans 0.0005–0.011
    assert len({round(v, 6) for v in variances}) == 40
    clean = data.camera()[:64, :64, None]
    lq = camera_noise_for_image(clean, 0.01, 0.0004, 0, "camera.png")
    np.testing.assert_array_equal(lq, camera_noise_for_image(clean, 0.01, 0.0004, 0, "camera.png"))
    assert not np.array_equal(lq, camera_noise_for_image(clean, 0.01, 0.0004, 0, "moon.png"))
    assert lq.min() < 0 or lq.max() > 255 or not np.allclose(lq, np.round(lq))  # float


@pytest.mark.parametrize("a", [1e-11, 1e-13, 1e-20, 1e-300, 5e-324])
def test_camera_noise_with_a_tiny_a_meets_its_gaussian_limit(a):
    """Below POISSON_MIN_A the shot noise is its Gaussian limit: variance a·x + b still, and
    as a → 0 the input of a = 0 itself."""
    flat = np.full((256, 256, 1), 0.5, np.float32)
    noisy = CameraNoise(a=a, b=0.001)(flat, np.random.default_rng(3)).astype(np.float64)
    assert noisy.var() == pytest.approx(0.5 * a + 0.001, rel=0.03)
    clean = data.camera()[:64, :64, None]
    lq = camera_noise_for_image(clean, a, 0.0004, 0, "camera.png")
    assert np.isfinite(lq).all()
    if a < POISSON_MIN_A:
        np.testing.assert_allclose(lq, camera_noise_for_image(clean, 0.0, 0.0004, 0,
                                                              "camera.png"), atol=1e-3)


@pytest.mark.parametrize("a, b, message", [
    (-0.01, 0.0004, "camera: a must be a number >= 0"),
    (0.01, -1e-4, "camera: b must be a number >= 0"),
    ([0.02, 0.001], 0.0, "camera: a must be"),
    (0.0, 0.0, "both 0"),
])
def test_camera_noise_levels_must_be_non_negative(a, b, message):
    with pytest.raises(HinasError, match=message):
        CameraNoise(a=a, b=b)
