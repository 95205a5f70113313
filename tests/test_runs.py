"""Run folders: checkpoints hold only tensors and plain values and a crafted one is refused
without running anything."""

import random

import numpy as np
import pytest
import torch

from hinas.cli import main
from hinas.config import TaskConfig
from hinas.errors import HinasError
from hinas.runs import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from tiny_runs import tiny_genotype, train_tiny, write_photos


class Payload:
    """Unpickling this object runs code: it writes `marker`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('ran')",)


def write_payload(path, marker):
    torch.save({"model": {}, "iteration": 1, "hook": Payload(marker)}, path)


def test_payload_checkpoint_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran"
    write_payload(tmp_path / "last.pt", marker)
    with pytest.raises(HinasError, match="refused: the checkpoint holds objects other than"):
        load_checkpoint(tmp_path / "last.pt")
    assert not marker.exists()


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    random.seed(1)
    np.random.seed(2)
    np.random.standard_normal()  # a cached Gaussian is part of NumPy's state
    torch.manual_seed(3)
    save_checkpoint(tmp_path / "c.pt", {"rng": rng_state(), "sample_rng":
                                        np.random.default_rng([3, 7]).bit_generator.state})
    expected = (random.random(), np.random.standard_normal(), torch.rand(1).item())
    random.seed(9)
    np.random.seed(9)
    torch.manual_seed(9)
    state = load_checkpoint(tmp_path / "c.pt")
    set_rng_state(state["rng"])
    assert (random.random(), np.random.standard_normal(), torch.rand(1).item()) == expected
    rng = np.random.default_rng()
    rng.bit_generator.state = state["sample_rng"]
    assert rng.random() == np.random.default_rng([3, 7]).random()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    photos = write_photos(base / "photos")
    return train_tiny(base / "run", photos, tiny_genotype(TaskConfig(sigma=[25.0]))), photos


@pytest.mark.parametrize("command", ["train", "search"])
def test_resume_from_a_payload_checkpoint_is_a_one_line_error(trained, tmp_path, capsys,
                                                                command):
    run, photos = trained
    data = []
    if command == "search":
        data = ["--data", str(photos)]
        assert main(["search", "--preset", "tiny", "--quiet", *data, "--out",
                     str(tmp_path / "s"), "--set", "search.epochs=1"]) == 0
        run = tmp_path / "s"
    marker = tmp_path / "ran"
    write_payload(run / "last.pt", marker)
    capsys.readouterr()
    assert main([command, "--resume", "--out", str(run), "--quiet", *data]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"hinas: error: {run / 'last.pt'}: refused")
    assert not marker.exists()
