"""Run folders: checkpoints hold only tensors and plain values and a crafted one is refused
without running anything; non-finite weights are never saved and a non-finite output is a
failure; settings changed on resume are applied (learning rates, length) or refused."""

import json
import math
import random
import shutil

import numpy as np
import pytest
import torch

import hinas.jobs.train as train_module
from hinas.cli import main
from hinas.config import TaskConfig, load_config
from hinas.errors import HinasError, NonFiniteError
from hinas.jobs.train import lr_factor
from hinas.models.folder import save_weights
from hinas.runtime.runs import (
    load_checkpoint,
    resume_changes,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from hinas.runtime.scoring import EvalPair, score_outputs
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
    run = shutil.copytree(run, tmp_path / "t")
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


def test_non_finite_weights_are_never_written(tmp_path):
    net = torch.nn.Conv2d(1, 1, 3)
    with torch.no_grad():
        net.weight[0, 0, 0, 0] = math.inf
    with pytest.raises(NonFiniteError, match="weight"):
        save_checkpoint(tmp_path / "last.pt", {"model": net.state_dict()})
    with pytest.raises(NonFiniteError, match="weight"):
        save_weights(net, tmp_path / "model.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_non_finite_output_is_a_failure_not_a_score():
    pair = EvalPair("a.png", np.zeros((16, 16, 1)), np.zeros((16, 16, 1), np.uint8))
    with pytest.raises(NonFiniteError, match="a.png: the restored image holds non-finite"):
        score_outputs(lambda lq: lq * np.nan, [pair], TaskConfig(sigma=[25.0]))


def test_weights_turning_nan_stop_training_and_keep_the_good_checkpoint(trained, tmp_path,
                                                                         monkeypatch):
    _, photos = trained
    real_step, calls = train_module.optimisation_step, []

    def poisons_at_20(net, *args, **kwargs):
        loss = real_step(net, *args, **kwargs)
        calls.append(1)
        if len(calls) == 20:  # finite loss, then the update leaves a NaN weight
            with torch.no_grad():
                next(net.parameters()).fill_(math.nan)
        return loss

    monkeypatch.setattr(train_module, "optimisation_step", poisons_at_20)
    run = tmp_path / "run"
    genotype = tmp_path / "g.json"
    tiny_genotype(TaskConfig(sigma=[25.0])).save(genotype)
    rc = main(["train", "--genotype", str(genotype), "--data", str(photos), "--out", str(run),
               "--preset", "tiny", "--quiet"])
    assert rc == 2
    assert load_checkpoint(run / "last.pt")["iteration"] == 10
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in records if "val_psnr" in r] == [10]


def _log(run, key):
    return [json.loads(line) for line in (run / key).read_text().splitlines()]


def test_train_resume_applies_a_new_learning_rate_and_length(trained, tmp_path, capsys):
    run = shutil.copytree(trained[0], tmp_path / "run")
    assert main(["train", "--resume", "--out", str(run), "--quiet", "--set", "train.lr=0.01",
                 "--set", "train.iters=40"]) == 0
    assert "train.lr 0.05 -> 0.01" in capsys.readouterr().err
    cfg = load_config(run / "config.yaml")
    assert (cfg.train.lr, cfg.train.iters) == (0.01, 40)
    logged = {r["iter"]: r["lr"] for r in _log(run, "metrics.jsonl") if "lr" in r}
    for it in (35, 40):
        assert logged[it] == pytest.approx(0.01 * lr_factor(cfg.train, it - 1), rel=1e-12)
    assert _log(run, "resumes.jsonl") == [
        {"iter": 30, "changes": {"train.iters": [30, 40], "train.lr": [0.05, 0.01]}}]


def test_resume_refuses_settings_that_would_change_the_experiment(trained, capsys):
    run, _ = trained
    before = (run / "last.pt").read_bytes()
    assert main(["train", "--resume", "--out", str(run), "--quiet", "--set",
                 "train.batch_size=8"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "last.pt: train.batch_size cannot change on --resume" in err
    assert (run / "last.pt").read_bytes() == before


def test_search_resume_applies_new_epochs_and_learning_rate(trained, tmp_path):
    _, photos = trained
    run = tmp_path / "s"
    common = ["--preset", "tiny", "--quiet", "--data", str(photos), "--out", str(run)]
    assert main(["search", *common, "--set", "search.epochs=1"]) == 0
    assert main(["search", "--resume", *common, "--set", "search.epochs=2",
                 "--set", "search.w_lr=0.01"]) == 0
    cfg = load_config(run / "config.yaml")
    second = _log(run, "metrics.jsonl")[1]
    assert second["epoch"] == 2
    assert second["w_lr"] == pytest.approx(
        cfg.search.w_lr_min + (0.01 - cfg.search.w_lr_min) * 0.5 * (1 + math.cos(math.pi / 2)))
    assert json.loads((run / "genotype.json").read_text())["meta"]["epochs"] == 2


def test_a_search_resumes_past_training_settings_but_not_its_budget_width(trained, tmp_path,
                                                                         capsys):
    _, photos = trained
    run = tmp_path / "s"
    assert _search(photos, run) == 0
    assert _search(photos, run, "--resume", "--set", "search.epochs=2", "--set",
                   "train.batch_size=3", "--set", "train.ema=0.9") == 0  # the search reads none
    assert _log(run, "resumes.jsonl")[-1]["changes"] == {"search.epochs": [1, 2]}
    capsys.readouterr()
    assert _search(photos, run, "--resume", "--set", "train.width_multiplier=3") == 2
    _one_line(capsys, "train.width_multiplier cannot change on --resume")


def _search(photos, out, *extra):
    return main(["search", "--preset", "tiny", "--quiet", "--data", str(photos), "--out",
                 str(out), "--set", "search.epochs=1", *extra])


def _one_line(capsys, *expected):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hinas: error: "), err
    for text in expected:
        assert text in err, err


def test_a_run_folder_in_use_is_refused(trained, tmp_path, capsys):
    import fcntl

    out = tmp_path / "busy"
    out.mkdir()
    with open(out / ".hinas.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another run holds the folder
        assert _search(trained[1], out) == 2
    _one_line(capsys, f"{out}: another hinas run is using this folder")
    assert _search(trained[1], out) == 0  # released: the folder is usable again
    assert not (out / ".hinas.lock").exists()  # a finished run leaves no lock file


def test_a_new_run_into_a_non_empty_folder_is_refused(trained, tmp_path, capsys):
    out = tmp_path / "used"
    out.mkdir()
    (out / "best.pt").write_bytes(b"stale")
    assert _search(trained[1], out) == 2
    _one_line(capsys, f"{out}: not empty (holds best.pt)")
    assert sorted(p.name for p in out.iterdir()) == ["best.pt"]


def test_temp_files_of_a_killed_run_are_removed_on_resume(trained, tmp_path):
    out = tmp_path / "s"
    assert _search(trained[1], out) == 0
    stale = out / ".last.pt.x1y2z3.tmp.pt"
    stale.write_bytes(b"torn")
    assert _search(trained[1], out, "--resume") == 0
    assert not stale.exists()


@pytest.mark.parametrize("command", ["search", "train"])
def test_a_failed_input_check_leaves_no_run_folder(trained, tmp_path, capsys, command):
    out = tmp_path / "new" / "run"
    genotype = tmp_path / "g.json"
    tiny_genotype(TaskConfig(sigma=[25.0])).save(genotype)
    extra = ["--genotype", str(genotype)] if command == "train" else []
    assert main([command, "--preset", "tiny", "--quiet", "--data", str(tmp_path / "nope"),
                 "--out", str(out), *extra]) == 2
    _one_line(capsys, "nope: no such folder")
    assert not out.exists()


@pytest.mark.parametrize("command", ["search", "train"])
def test_out_that_is_a_file_is_a_one_line_error(trained, tmp_path, capsys, command):
    out = tmp_path / "file.txt"
    out.write_text("mine")
    genotype = tmp_path / "g.json"
    tiny_genotype(TaskConfig(sigma=[25.0])).save(genotype)
    extra = ["--genotype", str(genotype)] if command == "train" else []
    assert main([command, "--preset", "tiny", "--quiet", "--data", str(trained[1]),
                 "--out", str(out), *extra]) == 2
    _one_line(capsys, f"{out}: is a file; --out takes a run folder")
    assert out.read_text() == "mine"


def test_settings_a_checkpoint_lacks_or_does_not_use_are_not_changes():
    saved = {"train": {"lr": 0.1}, "search": {"a_lr": 0.001}}
    newer = {"train": {"lr": 0.1, "new_option": 3}, "search": {"a_lr": 0.006}}
    assert resume_changes(saved, newer, "run", irrelevant=("search.",)) == {}
    with pytest.raises(HinasError, match="search.a_weight_decay cannot change"):
        resume_changes({"search": {"a_weight_decay": 1e-3}}, {"search": {"a_weight_decay": 0.0}},
                       "run")


def _files(folder):
    """Every file under `folder` with its bytes."""
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_resuming_a_folder_of_another_kind_names_what_it_holds(trained, tmp_path, capsys):
    run, photos = trained
    assert _search(photos, tmp_path / "s") == 0
    capsys.readouterr()
    before = {**_files(run), **_files(tmp_path / "s")}
    assert main(["search", "--resume", "--out", str(run), "--quiet"]) == 2
    _one_line(capsys, f"{run}: holds a training run, not a search; resume it with "
                      f"`hinas train --resume --out {run}`")
    assert main(["train", "--resume", "--out", str(tmp_path / "s"), "--quiet"]) == 2
    _one_line(capsys, f"{tmp_path / 's'}: holds a search, not a training run")
    assert {**_files(run), **_files(tmp_path / "s")} == before


@pytest.mark.parametrize("command", ["search", "train"])
@pytest.mark.parametrize("options, keys", [
    (["--task", "jpeg", "--quality", "20"], "task.name, task.quality"),
    (["--sigma", "50"], "task.sigma"),
    (["--seed", "3"], "seed"),
    (["--preset", "cpu"], "preset"),
])
def test_resume_refuses_a_changed_task_level_seed_or_preset(trained, tmp_path, capsys, command,
                                                             options, keys):
    run, photos = trained
    if command == "search":
        run = tmp_path / "s"
        assert _search(photos, run, "--sigma", "25") == 0
        capsys.readouterr()
    before = _files(run)
    assert main([command, "--resume", "--out", str(run), "--quiet", *options]) == 2
    _one_line(capsys, f"last.pt: {keys} cannot change on --resume")
    assert _files(run) == before


def test_options_the_rules_allow_are_applied_on_resume_and_recorded(trained, tmp_path, capsys):
    run = shutil.copytree(trained[0], tmp_path / "run")
    assert main(["train", "--resume", "--out", str(run), "--quiet", "--iters", "35",
                 "--workers", "1", "--device", "cpu", "--sigma", "25", "--preset", "tiny"]) == 0
    assert "data.workers 0 -> 1" in capsys.readouterr().err
    assert _log(run, "resumes.jsonl")[-1]["changes"] == {"train.iters": [30, 35],
                                                         "data.workers": [0, 1]}


def _nan_at_first_step(*args, **kwargs):
    raise FloatingPointError(math.nan)


@pytest.mark.parametrize("command", ["search", "train"])
def test_a_run_that_fails_before_its_first_checkpoint_can_be_run_again(trained, tmp_path,
                                                                        capsys, monkeypatch,
                                                                        command):
    import hinas.runtime.strategies as strategies_module

    _, photos = trained
    out = tmp_path / "run"
    genotype = tmp_path / "g.json"
    tiny_genotype(TaskConfig(sigma=[25.0])).save(genotype)
    argv = [command, "--preset", "tiny", "--quiet", "--data", str(photos), "--out", str(out),
            *(["--genotype", str(genotype)] if command == "train" else [])]
    module, step = ((strategies_module, "search_step") if command == "search"
                    else (train_module, "optimisation_step"))
    real = getattr(module, step)
    monkeypatch.setattr(module, step, _nan_at_first_step)
    assert main(argv) == 2
    rate = "search.w_lr" if command == "search" else "train.lr"
    errors = [line for line in capsys.readouterr().err.splitlines()
              if line.startswith("hinas: error: ")]  # after the search's budget warning
    assert len(errors) == 1 and f"(--set {rate}=..." in errors[0]
    assert "without --resume: the folder is reused" in errors[0]
    assert "config.yaml" in {p.name for p in out.iterdir()} and not (out / "last.pt").exists()
    assert main([command, "--resume", "--out", str(out), "--quiet"]) == 2
    _one_line(capsys, f"{out}: nothing to resume: the run never wrote a checkpoint")
    monkeypatch.setattr(module, step, real)
    assert main([*argv, "--set", f"{rate}=0.01"]) == 0  # the advice works
    assert "holds a run that never wrote a checkpoint" in capsys.readouterr().err
    assert load_config(out / "config.yaml").to_dict()[command]["lr" if command == "train"
                                                               else "w_lr"] == 0.01
    assert (out / "last.pt").exists() and not (out / "resumes.jsonl").exists()
