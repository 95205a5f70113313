"""The trained-model folder: model.json values are checked before anything is built."""

import json
import shutil

import pytest

from hinas.cli import main
from hinas.config import TaskConfig
from tiny_runs import tiny_genotype, train_tiny, write_photos


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    return train_tiny(base / "run", write_photos(base / "photos"),
                      tiny_genotype(TaskConfig(sigma=[25.0])))


def _edited(model, tmp_path, change):
    folder = shutil.copytree(model, tmp_path / "m")
    data = json.loads((folder / "model.json").read_text())
    change(data)
    (folder / "model.json").write_text(json.dumps(data))
    return folder


def _restore_fails(folder, tmp_path, capsys, problem):
    image = next((tmp_path / "m").glob("*.png"), None) or _image(tmp_path)
    assert main(["restore", str(image), "--model", str(folder), "-o", str(tmp_path / "o"),
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and problem in err, err
    assert not (tmp_path / "o").exists()


def _image(tmp_path):
    write_photos(tmp_path / "in", ("camera",), 32)
    return tmp_path / "in" / "camera.png"


@pytest.mark.parametrize("options, problem", [
    ({"width_multiplier": 1e9}, "option width_multiplier of 'hinas' must be a number in (0, 16]"),
    ({"width_multiplier": -4}, "option width_multiplier of 'hinas' must be a number in (0, 16]"),
    ({"width_multiplier": "2"}, "option width_multiplier of 'hinas' must be a number"),
    ({"depth": 3}, "architecture 'hinas' has no option(s) depth"),
])
def test_model_options_are_checked(model, tmp_path, capsys, options, problem):
    folder = _edited(model, tmp_path, lambda d: d.update(options=options))
    _restore_fails(folder, tmp_path, capsys, f"{folder / 'model.json'}: {problem}")


@pytest.mark.parametrize("name", ["../outside.json", "/etc/hostname", 7])
def test_genotype_path_stays_inside_the_model_folder(model, tmp_path, capsys, name):
    (tmp_path / "outside.json").write_text((model / "genotype.json").read_text())
    folder = _edited(model, tmp_path, lambda d: d.update(genotype=name))
    _restore_fails(folder, tmp_path, capsys,
                   f"{folder / 'model.json'}: the genotype must be a file inside the model folder")


def test_genotype_of_a_model_is_capped(model, tmp_path, capsys):
    folder = shutil.copytree(model, tmp_path / "m")
    data = json.loads((folder / "genotype.json").read_text())
    data["space"]["width"] = 10**9
    (folder / "genotype.json").write_text(json.dumps(data))
    _restore_fails(folder, tmp_path, capsys,
                   f"{folder / 'genotype.json'}: space.width must be in 1..2048")


def test_deeply_nested_model_file(model, tmp_path, capsys):
    folder = shutil.copytree(model, tmp_path / "m")
    (folder / "model.json").write_text("{\"a\":" * 50_000 + "1" + "}" * 50_000)
    _restore_fails(folder, tmp_path, capsys,
                   f"{folder / 'model.json'}: not a model file (JSON nested too deeply)")


def test_a_too_wide_derived_network_is_refused(model, tmp_path, capsys):
    genotype = tiny_genotype(TaskConfig(sigma=[25.0]))
    genotype.space.width, genotype.space.width_factors = 512, [1.0, 4.0, 4.0]
    path = tmp_path / "g.json"
    genotype.save(path)
    assert main(["train", "--genotype", str(path), "--data", str(model.parent / "photos"), "--out",
                 str(tmp_path / "run"), "--preset", "tiny", "--set",
                 "train.width_multiplier=16"]) == 2
    assert f"{path}: a node width of 32768 (over 2048)" in capsys.readouterr().err


def test_switch_options_take_booleans_only():
    from hinas.errors import HinasError
    from hinas.models.architectures import MODELS
    entry = MODELS.get("fsrcnn")
    entry.check_options({"residual": False, "d": 32})
    with pytest.raises(HinasError, match="option residual of 'fsrcnn' must be true or false"):
        entry.check_options({"residual": 1})
