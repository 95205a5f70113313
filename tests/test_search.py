"""Search end to end at the tiny preset: both tasks, every strategy (HiNAS, RSWS), exact
kill-and-resume, bad inputs."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from PIL import Image

import hinas.runtime.strategies as strategies_module
from hinas.cli import main
from hinas.config import STRATEGIES as CONFIG_STRATEGIES
from hinas.config import load_config, load_yaml, resolve
from hinas.errors import HinasError
from hinas.jobs.search import SearchRun, prepare_data, search, steps_per_epoch
from hinas.models.architectures import DerivedNet
from hinas.runtime.runs import MetricsLog
from hinas.runtime.strategies import STRATEGIES
from hinas.space.genotype import Genotype


def run_cli(*args) -> int:
    return main(["search", "--preset", "tiny", "--quiet", *map(str, args)])


@pytest.mark.parametrize("task", [["--task", "denoise", "--sigma", "25"],
                                  ["--task", "sr", "--scale", "3"]], ids=["denoise", "sr"])
def test_tiny_search_writes_a_complete_run_folder(photo_folder, tmp_path, task):
    out = tmp_path / "run"
    assert run_cli(*task, "--data", photo_folder, "--out", out) == 0
    for name in ("config.yaml", "genotype.json", "architecture.png", "metrics.jsonl",
                 "arch_history.jsonl", "arch_evolution.png", "curves.png", "best.pt", "last.pt"):
        assert (out / name).is_file(), name
    genotype = Genotype.load(out / "genotype.json")
    assert genotype.task.name == task[1]
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    assert records[0]["phase"] == "warmup" and records[-1]["phase"] == "search"
    assert all(r["val_psnr"] > 5 for r in records[1:])
    assert genotype.meta["best_epoch"] >= 2
    assert 0 < sum(r["seconds"] for r in records) <= genotype.meta["search_seconds"]
    log = (out / "run.log").read_text().splitlines()
    assert "search started" in log[0] and len(log) == 1 + 4 + 1
    assert "  epoch 1/4  phase warmup  w_loss " in log[1] and "val_psnr" not in log[1]
    assert "  epoch 4/4  phase search  " in log[4] and " val_psnr " in log[4]
    assert "genotype written to" in log[5]
    net = DerivedNet(genotype)
    import torch

    x = torch.rand(1, genotype.task.channels, 30, 33)
    assert net(x).shape[-1] == 33 * genotype.task.out_scale


def test_random_search_baseline(photo_folder, tmp_path):
    out = tmp_path / "rsws"
    assert run_cli("--strategy", "random", "--samples", "3", "--data", photo_folder,
                   "--out", out) == 0
    genotype = Genotype.load(out / "genotype.json")
    assert genotype.meta["strategy"] == "random" and genotype.meta["samples"] == 3
    assert genotype.meta["search_seconds"] > 0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {r["phase"] for r in records} == {"random"}
    assert all(len(node) == 2 for cell in genotype.cells for node in cell)
    DerivedNet(genotype)


def test_kill_and_resume_gives_the_same_genotype(photo_folder, tmp_path):
    # every run in its own process under one thread count: floating-point sums (hence α, β)
    # depend on how many threads split them, and other tests change this process's setting
    common = ["--preset", "tiny", "--quiet", "--data", str(photo_folder), "--set",
              "search.epochs=6", "--seed", "3"]
    cli = [sys.executable, "-m", "hinas.cli", "search", *common]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([*cli, "--out", str(tmp_path / "straight")], env=env, check=True)
    straight = Genotype.load(tmp_path / "straight" / "genotype.json")

    out = tmp_path / "killed"
    proc = subprocess.Popen([*cli, "--out", str(out)], env=env, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    log = out / "metrics.jsonl"
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "genotype.json").exists(), "the run finished before it could be killed"
    subprocess.run([sys.executable, "-m", "hinas.cli", "search", "--resume", "--out", str(out),
                    "--quiet"], env=env, check=True)  # data: the run's
    resumed = Genotype.load(out / "genotype.json")
    assert resumed.path == straight.path and resumed.cells == straight.cells
    assert resumed.alpha == straight.alpha and resumed.beta == straight.beta
    epochs = [json.loads(line)["epoch"] for line in log.read_text().splitlines()]
    assert epochs == [1, 2, 3, 4, 5, 6]
    text = (out / "run.log").read_text()
    assert "search started" in text and "search resumed after epoch" in text
    assert "  epoch 6/6  " in text


def test_run_folder_records_its_data_and_names_the_next_command(photo_folder, tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli("--data", photo_folder, "--out", out) == 0
    assert load_yaml(out / "config.yaml")["data"]["path"] == [str(photo_folder)]
    printed = capsys.readouterr().out.splitlines()
    assert f"genotype written to {out / 'genotype.json'}" in printed[-2]
    assert "architecture.png" in printed[-2] and "metrics.jsonl" in printed[-2]
    assert printed[-1] == (f"next: hinas train --genotype {out / 'genotype.json'} --data "
                           f"{photo_folder} --preset tiny --out {out}-train")
    (out / "genotype.json").unlink()  # a finished run resumes to its end and derives again
    assert main(["search", "--resume", "--out", str(out), "--quiet"]) == 0
    assert (out / "genotype.json").is_file()


def test_missing_and_empty_folders(tmp_path, capsys):
    assert run_cli("--data", tmp_path / "nope", "--out", tmp_path / "r") == 2
    assert "nope: no such folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert run_cli("--data", tmp_path / "empty", "--out", tmp_path / "r") == 2
    assert "no images" in capsys.readouterr().err


def test_unreadable_image_is_skipped_with_a_warning(photo_folder, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for p in sorted(photo_folder.iterdir())[:6]:
        (data / p.name).write_bytes(p.read_bytes())
    (data / "broken.png").write_bytes(b"not an image at all")
    assert run_cli("--data", data, "--out", tmp_path / "r", "--set", "search.epochs=1",
                   "--set", "search.eval_from_epoch=1") == 0
    assert "broken.png" in capsys.readouterr().err


def test_only_unreadable_images_is_an_error(tmp_path, capsys):
    (tmp_path / "a.png").write_bytes(b"garbage")
    (tmp_path / "b.jpg").write_bytes(b"garbage")
    assert run_cli("--data", tmp_path, "--out", tmp_path / "r") == 2
    assert "none of the 2 images could be read" in capsys.readouterr().err


def test_image_smaller_than_crop(photo_folder, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for p in sorted(photo_folder.iterdir())[:4]:
        (data / p.name).write_bytes(p.read_bytes())
    Image.new("L", (20, 16)).save(data / "tiny.png")
    assert run_cli("--data", data, "--out", tmp_path / "r") == 2
    assert "tiny.png: image is 20x16, smaller than the 24x24 crop" in capsys.readouterr().err


def test_nan_loss_stops_with_a_clear_message(photo_folder, tmp_path, capsys):
    code = run_cli("--data", photo_folder, "--out", tmp_path / "r", "--set", "search.w_lr=1e9",
                   "--set", "search.grad_clip=0", "--set", "search.warmup_epochs=4")
    assert code == 2
    assert "loss became" in capsys.readouterr().err


def test_unknown_preset_and_key(photo_folder, tmp_path, capsys):
    assert main(["search", "--preset", "huge", "--data", str(photo_folder),
                 "--out", str(tmp_path / "r")]) == 2
    assert "unknown preset 'huge'" in capsys.readouterr().err
    assert run_cli("--data", photo_folder, "--out", tmp_path / "r", "--set", "search.epoch=3") == 2
    assert "unknown config key(s) in search: epoch" in capsys.readouterr().err


def test_existing_run_is_not_overwritten(photo_folder, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "last.pt").write_bytes(b"x")
    with pytest.raises(HinasError, match="holds a search already"):
        search(resolve("denoise", "tiny"), photo_folder, out, quiet=True)


def test_search_logs_its_budget_and_decisiveness_and_states_a_verdict(photo_folder, tmp_path,
                                                                      capsys):
    out = tmp_path / "run"
    assert main(["search", "--preset", "tiny", "--data", str(photo_folder), "--out",
                 str(out)]) == 0
    err = capsys.readouterr().err
    assert "architecture-step budget: 18 A-steps of 2 crops × a_lr 0.001 = logit budget 0.018" \
        in err
    assert "warning: 18 A-steps at a_lr 0.001 (logit budget 0.018) may not decide" in err
    assert "hinas: search undecided: path margin" in err
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["a_steps"] for r in records] == [0, 6, 12, 18]
    assert all(r["a_steps_total"] == 18 for r in records)
    for r in records:
        assert len(r["alpha_entropy"]) == 2 and 0.9 < r["beta_entropy"] <= 1.0
        assert r["path_margin"] >= 0 and r["choices_changed"] >= 0
    assert records[0]["choices_changed"] == 0  # warm-up does not move α/β
    meta = Genotype.load(out / "genotype.json").meta
    assert meta["arch_budget"] == {"a_steps": 18, "a_batch": 2, "a_lr": 0.001,
                                   "logit_budget": 0.018, "steps_per_epoch": 6}
    assert meta["path_prior"] == "correct" and meta["verdict"]["decided"] is False
    best = next(r for r in records if r["epoch"] == meta["best_epoch"])
    assert meta["decisiveness"]["path_margin"] == best["path_margin"]


def test_larger_a_batches_feed_the_a_steps(photo_folder, tmp_path, monkeypatch):
    cfg = resolve("denoise", "tiny", overrides=["search.a_batch_size=12"])
    data = prepare_data(cfg, photo_folder)
    steps = steps_per_epoch(cfg, len(data.split["w"]))
    assert len(data.train_a) == 12 * steps and len(data.train_w) == 2 * steps
    shapes = []
    real = strategies_module.search_step

    def spy(net, w_opt, a_opt, loss_fn, w_batch, a_batch, *args):
        shapes.append((w_batch[0].shape[0], None if a_batch is None else a_batch[0].shape[0]))
        return real(net, w_opt, a_opt, loss_fn, w_batch, a_batch, *args)

    monkeypatch.setattr(strategies_module, "search_step", spy)
    genotype = search(cfg, photo_folder, tmp_path / "run", quiet=True)
    assert {s for s in shapes if s[1] is not None} == {(2, 12)}
    assert genotype.meta["arch_budget"]["a_batch"] == 12


def test_random_genotype_from_the_cli(tmp_path, capsys):
    like = _write_tiny(tmp_path / "like.json")
    tiny = Genotype.load(like)
    assert main(["arch", "random", "--like", str(like), "-o", str(tmp_path / "r.json"),
                 "--seed", "4", "--width-multiplier", "1"]) == 0
    drawn = Genotype.load(tmp_path / "r.json")
    target = drawn.meta["target_params"]
    assert target == sum(p.numel() for p in DerivedNet(tiny).parameters())
    assert abs(drawn.meta["params"] - target) <= 0.15 * target
    assert "random genotype written to" in capsys.readouterr().out
    assert main(["arch", "random", "--like", str(like), "-o", str(tmp_path / "x.json"),
                 "--tolerance", "0.001", "--tries", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"hinas: error: {like}: no random genotype within")
    assert not (tmp_path / "x.json").exists()


def _write_tiny(path):
    from hinas.config import SpaceConfig, TaskConfig

    cell = [[(0, "conv_3x3"), (1, "dil_conv_3x3")], [(1, "skip_connect"), (2, "sep_conv_5x5")]]
    Genotype(TaskConfig(), SpaceConfig(layers=2, nodes=2, width=3), [0, 1], [cell, cell]).save(path)
    return path


@pytest.mark.parametrize("strategy", [n for n in STRATEGIES.names() if STRATEGIES.get(n).trains])
def test_every_strategy_searches_and_resumes_exactly(photo_folder, tmp_path, monkeypatch,
                                                     strategy):
    cfg = resolve("denoise", "tiny", overrides=[f"search.strategy={strategy}", "search.epochs=3",
                                               "search.samples=2"])
    straight = search(cfg, photo_folder, tmp_path / "straight", quiet=True)
    out = tmp_path / "stopped"
    real_epoch = SearchRun._epoch

    def stop_before_the_last(run, epoch, bar):
        if epoch == 3:
            raise KeyboardInterrupt
        real_epoch(run, epoch, bar)

    monkeypatch.setattr(SearchRun, "_epoch", stop_before_the_last)
    with pytest.raises(KeyboardInterrupt):
        search(cfg, photo_folder, out, quiet=True)
    monkeypatch.undo()
    resumed = search(load_config(out / "config.yaml"), photo_folder, out, resume=True, quiet=True)
    assert resumed.meta["strategy"] == strategy
    assert {k: v for k, v in resumed.to_dict().items() if k != "meta"} == \
        {k: v for k, v in straight.to_dict().items() if k != "meta"}
    losses = [[r["w_loss"] for r in MetricsLog(run / "metrics.jsonl").read()]
              for run in (tmp_path / "straight", out)]
    assert len(losses[0]) == 3 and losses[0] == losses[1]
    learns_arch = STRATEGIES.get(strategy).learns_arch
    assert (tmp_path / "straight" / "arch_history.jsonl").is_file() == learns_arch
    assert len(MetricsLog(out / "arch_history.jsonl").read()) == (3 if learns_arch else 0)
    assert (out / "best.pt").is_file() == learns_arch
    DerivedNet(resumed)


def test_the_config_offers_the_registered_strategies():
    assert sorted(CONFIG_STRATEGIES) == STRATEGIES.names()
