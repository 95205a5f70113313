"""The top-level Python API: lazy names visible to dir(), the job functions, restore_image."""

import numpy as np
import pytest
import torch
from PIL import Image

import hinas
from hinas.config import TaskConfig, resolve
from hinas.errors import HinasError
from hinas.jobs.restore import restore_images
from hinas.models.folder import ModelSpec
from tiny_runs import GRAY_PHOTOS, tiny_genotype, write_photos

API = ("search", "train", "load_model", "list_models", "restore_image")


def test_dir_and_all_list_the_api():
    for name in API:
        assert name in dir(hinas) and name in hinas.__all__
        assert callable(getattr(hinas, name))
    assert "hinas" in hinas.list_models() and "dncnn" in hinas.list_models()
    from hinas.jobs.search import search

    assert hinas.search is search and hinas.train.__module__ == "hinas.jobs.train"
    assert "N×C×H×W" in hinas.load_model.__doc__ and "[0, 1]" in hinas.load_model.__doc__
    with pytest.raises(AttributeError):
        hinas.nothing_here  # noqa: B018


def test_search_train_load_restore_from_python(tmp_path):
    photos = write_photos(tmp_path / "photos", GRAY_PHOTOS, size=64)
    cfg = resolve("denoise", "tiny", overrides=["search.epochs=2", "search.eval_from_epoch=2",
                                                "train.iters=10"])
    genotype = hinas.search(cfg, photos, tmp_path / "search", quiet=True)
    assert (tmp_path / "search" / "genotype.json").is_file() and genotype.path
    spec = hinas.train(cfg, photos, tmp_path / "train", genotype, quiet=True)
    assert spec.meta["iterations"] == 10
    model = hinas.load_model(tmp_path / "train")
    noisy = np.asarray(Image.open(photos / "camera.png"))
    restored = hinas.restore_image(model, noisy)
    assert restored.dtype == np.uint8 and restored.shape == noisy.shape
    written = restore_images(tmp_path / "train", [photos / "camera.png"], tmp_path / "out",
                             quiet=True)
    assert np.array_equal(restored, np.asarray(Image.open(written[0])))  # same as the CLI
    assert np.array_equal(hinas.restore_image(tmp_path / "train", noisy[..., None]),
                          restored[..., None])


def test_a_spec_saved_with_its_network_is_a_model_folder(tmp_path):
    task = TaskConfig(name="denoise", channels=1)
    spec = ModelSpec("hinas", task, {}, tiny_genotype(task))
    net = spec.build().eval()
    spec.save(tmp_path, net)
    x = torch.rand(1, 1, 24, 24)
    with torch.no_grad():
        assert torch.equal(hinas.load_model(tmp_path)(x), net(x))


def test_restore_image_sizes_channels_and_clipping():
    task = TaskConfig(name="sr", scale=3, channels=3)
    net = ModelSpec("hinas", task, {}, tiny_genotype(task)).build()
    rgb = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    out = hinas.restore_image(net, rgb)
    assert out.shape == (111, 159, 3) and out.dtype == np.uint8
    assert np.array_equal(hinas.restore_image(net, rgb, tile=24, overlap=8).shape, out.shape)
    assert net.training  # its mode is restored
    gray = rgb[..., 0]
    with pytest.raises(HinasError, match="gray image, but the model restores RGB"):
        hinas.restore_image(net, gray)
    assert hinas.restore_image(net, gray, convert=True).shape == (111, 159)

    loud = torch.nn.Conv2d(1, 1, 1, bias=False)
    torch.nn.init.constant_(loud.weight, 10.0)  # outputs far above the 0-255 range: clipped
    assert hinas.restore_image(loud, np.full((5, 7), 200, np.uint8)).max() == 255
    assert hinas.restore_image(loud, np.full((5, 7), 0, np.uint8)).max() == 0
    with pytest.raises(HinasError, match="RGB image, but the model restores gray"):
        hinas.restore_image(loud, rgb)
    for bad in (rgb.astype(np.float32), np.zeros((4, 4, 2), np.uint8), np.zeros(4, np.uint8)):
        with pytest.raises(HinasError, match="uint8 HxW, HxWx1 or HxWx3"):
            hinas.restore_image(loud, bad)
