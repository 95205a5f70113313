"""Training: the run folder, best weights, exact resume, NaN handling, task checks, schedules,
and the trained-model format (`hinas.load_model`)."""

import json
import math
import re
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

import hinas
import hinas.jobs.train as train_module
from hinas.cli import main
from hinas.config import TaskConfig, TrainConfig, resolve
from hinas.data.images import load_image
from hinas.errors import HinasError
from hinas.jobs.train import lr_factor, train
from hinas.models.architectures import list_models
from hinas.models.folder import ModelSpec
from hinas.runtime.runs import load_checkpoint
from hinas.runtime.scoring import make_pairs, score_model
from hinas.space.genotype import Genotype
from tiny_runs import GRAY_PHOTOS, RGB_PHOTOS, tiny_genotype, train_tiny, write_photos

DENOISE = TaskConfig(name="denoise", sigma=[25.0], channels=1)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return write_photos(tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="module")
def genotype_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("genotype") / "genotype.json"
    tiny_genotype(DENOISE).save(path)
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory, photos):
    return train_tiny(tmp_path_factory.mktemp("train") / "run", photos, tiny_genotype(DENOISE))


def _cfg():
    return resolve("denoise", "tiny", task={"sigma": [25.0]})


def test_run_folder_records_everything(run, photos):
    for name in ("config.yaml", "model.json", "genotype.json", "model.safetensors", "last.pt",
                 "metrics.jsonl", "curves.png"):
        assert (run / name).is_file(), name
    spec = json.loads((run / "model.json").read_text())
    assert spec["arch"] == "hinas" and spec["genotype"] == "genotype.json"
    assert spec["task"]["name"] == "denoise" and spec["task"]["sigma"] == [25.0]  # from genotype
    assert spec["meta"]["iterations"] == 30 and spec["meta"]["data"] == [str(photos)]
    assert Genotype.load(run / "genotype.json").to_dict()["cells"] == \
        tiny_genotype(DENOISE).to_dict()["cells"]
    assert yaml.safe_load((run / "config.yaml").read_text())["preset"] == "tiny"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    logs = [r for r in records if "loss" in r]
    vals = [r for r in records if "val_psnr" in r]
    assert [r["iter"] for r in logs] == [5, 10, 15, 20, 25, 30]  # tiny: log_every 5
    assert [r["iter"] for r in vals] == [10, 20, 30]  # tiny: val_every 10
    assert all({"loss", "lr", "seconds"} <= set(r) for r in logs)
    assert all({"val_ssim", "peak_rss_mb"} <= set(r) for r in vals)
    assert logs[0]["lr"] == pytest.approx(0.05 * lr_factor(TrainConfig(iters=30, lr=0.05), 4))
    # the validation images are held back from training
    split = spec["meta"]["data_split"]
    assert len(split["val"]) == 1 and not set(split["val"]) & set(split["train"])
    assert len(split["train"]) == len(GRAY_PHOTOS) - 1
    assert sorted(split["train"] + split["val"]) == sorted(f"{n}.png" for n in GRAY_PHOTOS)
    # the plain-text log: a header, one line per metrics record, the campaign, the result
    log = (run / "run.log").read_text().splitlines()
    assert len(log) == 1 + len(records) + 2
    assert "train hinas started: denoise sigma=25" in log[0] and str(photos) in log[0]
    assert re.search(r"  iter 5/30  loss \d\.\d+  lr 0\.0\d+  seconds \d", log[1])
    assert re.search(r"  iter 30/30  val_psnr \d+\.\d\d  val_ssim 0\.\d{4}", log[-3])
    assert "piece 1: done at iteration 30" in log[-2]
    assert "model written to" in log[-1] and "best validation PSNR" in log[-1]


def test_load_model_gives_the_best_weights_in_eval_mode(run):
    model = hinas.load_model(run, device="cpu")
    assert isinstance(model, torch.nn.Module) and not model.training
    saved = load_file(str(run / "model.safetensors"))
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())
    spec = ModelSpec.load(run)
    folder = Path(spec.meta["data"][0])
    val = {folder / p: load_image(folder / p, 1) for p in spec.meta["data_split"]["val"]}
    cfg = _cfg()
    _, scores = score_model(model, make_pairs(val, spec.task, cfg.seed, cfg.train.val_crop),
                            spec.task, "cpu")
    assert scores["psnr"] == pytest.approx(spec.meta["best_val_psnr"], abs=1e-9)
    best = max(json.loads(line).get("val_psnr", -1) for line in
               (run / "metrics.jsonl").read_text().splitlines())
    assert spec.meta["best_val_psnr"] == best


def test_resume_after_a_kill_is_exact(tmp_path, photos, genotype_file, monkeypatch):
    cfg = _cfg()
    train(cfg, photos, tmp_path / "straight", genotype_file, quiet=True)
    real_step, calls = train_module.optimisation_step, []

    def dies_at_25(*args, **kwargs):
        calls.append(1)
        if len(calls) == 25:
            raise KeyboardInterrupt  # killed between the checkpoints of iterations 20 and 30
        return real_step(*args, **kwargs)

    monkeypatch.setattr(train_module, "optimisation_step", dies_at_25)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, photos, tmp_path / "resumed", genotype_file, quiet=True)
    monkeypatch.setattr(train_module, "optimisation_step", real_step)
    assert load_checkpoint(tmp_path / "resumed" / "last.pt")["iteration"] == 20
    assert main(["train", "--out", str(tmp_path / "resumed"), "--resume", "--quiet"]) == 0

    a = load_checkpoint(tmp_path / "straight" / "last.pt")
    b = load_checkpoint(tmp_path / "resumed" / "last.pt")
    assert a["iteration"] == b["iteration"] == 30
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    best_a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    best_b = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    assert best_a.keys() == best_b.keys()
    assert all(torch.equal(best_a[k], best_b[k]) for k in best_a)

    def strip(path):  # timings aside, the logs agree line by line
        drop = {"seconds", "val_seconds", "peak_rss_mb"}
        return [{k: v for k, v in json.loads(line).items() if k not in drop}
                for line in path.read_text().splitlines()]

    assert strip(tmp_path / "straight" / "metrics.jsonl") == \
        strip(tmp_path / "resumed" / "metrics.jsonl")


def nan_at_step(n: int):
    """The training step, but the `n`-th call raises the NaN-loss error."""
    real_step, calls = train_module.optimisation_step, []

    def step(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise FloatingPointError(math.nan)
        return real_step(*args, **kwargs)

    return step


def test_nan_loss_stops_and_keeps_the_last_checkpoint(tmp_path, photos, genotype_file,
                                                      monkeypatch):
    monkeypatch.setattr(train_module, "optimisation_step", nan_at_step(15))
    with pytest.raises(HinasError, match=r"loss became nan at iteration 15; stopped, the last "
                                         r"good checkpoint .*last.pt \(iteration 10\) is kept"):
        train(_cfg(), photos, tmp_path / "run", genotype_file, quiet=True)
    assert load_checkpoint(tmp_path / "run" / "last.pt")["iteration"] == 10


def test_diverging_run_is_a_one_line_error(tmp_path, photos, genotype_file, capsys):
    rc = main(["train", "--genotype", str(genotype_file), "--data", str(photos), "--out",
               str(tmp_path / "run"), "--preset", "tiny", "--quiet", "--set", "train.lr=1e12",
               "--set", "train.grad_clip=0"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err
    assert "loss became" in err and "no checkpoint had been written yet" in err


def test_a_bf16_run_that_diverges_resumes_in_full_precision(tmp_path, photos, genotype_file,
                                                            monkeypatch, capsys):
    monkeypatch.setattr(train_module, "optimisation_step", nan_at_step(15))
    base = ["train", "--genotype", str(genotype_file), "--data", str(photos), "--out",
            str(tmp_path / "run"), "--preset", "tiny", "--quiet"]
    assert main([*base, "--amp", "bf16", "--iters", "20", "--set", "train.val_every=10"]) == 2
    err = capsys.readouterr().err
    assert "try full precision (--resume --amp off) or a lower learning rate" in err
    assert main([*base, "--resume", "--amp", "off"]) == 0
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["train"]["amp"] == "off"
    resumed = json.loads((tmp_path / "run" / "resumes.jsonl").read_text().splitlines()[-1])
    assert resumed["iter"] == 10 and resumed["changes"] == {"train.amp": ["bf16", "off"]}


def test_task_must_match_the_genotype(tmp_path, photos, genotype_file, capsys):
    base = ["train", "--genotype", str(genotype_file), "--data", str(photos), "--preset", "tiny",
            "--quiet"]
    assert main([*base, "--out", str(tmp_path / "a"), "--task", "sr", "--scale", "2"]) == 2
    assert "built for denoise sigma=25 with 1 channel(s) (not 'sr'" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "b"), "--channels", "3"]) == 2
    assert "1 channel(s), not 3" in capsys.readouterr().err
    assert main(["train", "--data", str(photos), "--out", str(tmp_path / "c")]) == 2
    assert "give --genotype" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "d"), "--arch", "nope"]) == 2
    assert "unknown architecture 'nope'" in capsys.readouterr().err


def test_existing_run_needs_resume(run, photos, genotype_file, capsys):
    assert main(["train", "--genotype", str(genotype_file), "--data", str(photos), "--out",
                 str(run), "--preset", "tiny", "--quiet"]) == 2
    assert "holds a training run already; use --resume" in capsys.readouterr().err


def test_learning_rate_schedules():
    cosine = TrainConfig(iters=100, lr=0.05, lr_min=1e-5)
    assert lr_factor(cosine, 0) == 1.0
    assert lr_factor(cosine, 50) == pytest.approx((1 + 1e-5 / 0.05) / 2)
    assert lr_factor(cosine, 100) == pytest.approx(1e-5 / 0.05)
    step = TrainConfig(iters=100, schedule="step")
    assert [lr_factor(step, d) for d in (0, 49, 50, 74, 75, 99)] == \
        pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])


def test_model_registry_and_folder_errors(tmp_path):
    assert "hinas" in list_models()
    with pytest.raises(HinasError, match="no such model folder"):
        hinas.load_model(tmp_path / "missing")
    with pytest.raises(HinasError, match="not a trained model"):
        hinas.load_model(tmp_path)
    (tmp_path / "model.json").write_text("{")
    with pytest.raises(HinasError, match="model.json: not valid JSON"):
        hinas.load_model(tmp_path)


def test_warm_up_then_cosine():
    t = TrainConfig(iters=110, lr=0.05, lr_min=0.0, warmup_iters=10)
    assert [lr_factor(t, d) for d in (0, 4, 9)] == pytest.approx([1 / 11, 5 / 11, 10 / 11])
    assert lr_factor(t, 10) == 1.0
    assert lr_factor(t, 60) == pytest.approx(0.5)
    assert lr_factor(t, 110) == pytest.approx(0.0)


def test_optimizer_choice_and_validation():
    cfg = resolve("denoise", "tiny", overrides=["train.optimizer=adamw", "train.lr=0.001"])
    net = ModelSpec.from_config("hinas", cfg, tiny_genotype(DENOISE)).build()
    opt = train_module.build_optimizer(net, cfg.train, "hinas")
    assert isinstance(opt, torch.optim.AdamW) and opt.param_groups[0]["lr"] == 0.001
    assert isinstance(train_module.build_optimizer(net, _cfg().train, "hinas"), torch.optim.SGD)
    for bad, message in (("train.optimizer=adam", "train.optimizer must be one of"),
                         ("train.warmup_iters=30", "train.warmup_iters must be in"),
                         ("train.grad_clip=-1", "train.grad_clip must be"),
                         ("train.lr_min=1", r"train.lr_min must be a finite learning rate in "
                                            r"\[0, train.lr\]")):
        with pytest.raises(HinasError, match=message):
            resolve("denoise", "tiny", overrides=[bad])


@pytest.mark.parametrize("text,seconds", [("90s", 90), ("45m", 2700), ("1.5h", 5400),
                                          ("20", 20)])
def test_budget_parsing(text, seconds):
    assert train_module.parse_budget(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "-5m", "0s", "fast", "nanm"])
def test_bad_budget_is_refused(text):
    with pytest.raises(HinasError, match="give a positive duration"):
        train_module.parse_budget(text)


def test_budget_sets_and_records_the_iterations_and_iters_reproduces(tmp_path, photos,
                                                                      genotype_file, capsys):
    budget = 8.0
    out = train_tiny(tmp_path / "budget", photos, tiny_genotype(DENOISE), "--budget", "8s",
                     "--set", "train.val_every=100")
    meta = json.loads((out / "model.json").read_text())["meta"]
    iters = meta["budget"]["iters"]
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["iters"] == iters
    assert meta["iterations"] == iters > 20
    assert meta["train_seconds"] < 1.5 * budget  # the schedule ends within the budget (± load)
    assert f"reproduce with --iters {iters}" in capsys.readouterr().out
    again = train_tiny(tmp_path / "again", photos, tiny_genotype(DENOISE), "--iters", str(iters),
                       "--set", "train.val_every=100")
    first, second = load_file(out / "model.safetensors"), load_file(again / "model.safetensors")
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert main(["train", "--genotype", str(genotype_file), "--data", str(photos), "--out",
                 str(tmp_path / "both"), "--preset", "tiny", "--budget", "5s", "--iters",
                 "3"]) == 2
    assert "--budget sets the iteration count of a new run" in capsys.readouterr().err
    assert main(["train", "--genotype", str(genotype_file), "--data", str(photos), "--out",
                 str(tmp_path / "short"), "--preset", "tiny", "--budget", "0.01s",
                 "--quiet"]) == 2
    assert "give a longer budget" in capsys.readouterr().err


def test_blind_training_from_a_sigma_range(tmp_path, photos, capsys):
    out = train_tiny(tmp_path / "blind", photos, tiny_genotype(DENOISE), "--sigma", "0:55",
                     "--iters", "4", "--set", "train.val_every=4")
    task = yaml.safe_load((out / "config.yaml").read_text())["task"]
    assert task["sigma"] == [0.0, 55.0] and task["sigma_sampling"] == "uniform"
    spec = ModelSpec.load(out)
    assert spec.task.blind and spec.task.eval_sigma == 27.5
    assert spec.task.describe() == "denoise sigma=0:55"
    for bad in (["0:55", "60"], ["55:0"], ["a:b"]):
        assert main(["train", "--genotype", str(tmp_path / "blind-genotype.json"), "--data",
                     str(photos), "--out", str(tmp_path / "bad"), "--preset", "tiny",
                     "--sigma", *bad]) == 2
        assert "sigma" in capsys.readouterr().err


def test_init_from_copies_the_weights_that_fit(tmp_path, capsys):
    rgb = write_photos(tmp_path / "rgb", RGB_PHOTOS[:4], size=48)
    x4, x2 = (tiny_genotype(TaskConfig(name="sr", scale=s, channels=3)) for s in (4, 2))
    first = train_tiny(tmp_path / "x4", rgb, x4, "--iters", "2", "--set", "train.val_every=2")
    second = train_tiny(tmp_path / "x2", rgb, x2, "--iters", "1", "--set", "train.val_every=1",
                        "--set", "train.lr=1e-9", "--set", "train.lr_min=0", "--init-from",
                        str(first))
    init = json.loads((second / "model.json").read_text())["meta"]["init_from"]
    assert 0 < init["tensors_copied"] < init["tensors"]  # all but the x2 tail's last conv
    a, b = load_file(first / "model.safetensors"), load_file(second / "model.safetensors")
    assert torch.allclose(a["stem.conv0.0.weight"], b["stem.conv0.0.weight"], atol=1e-6)
    assert a["tail.body.2.weight"].shape != b["tail.body.2.weight"].shape
    assert main(["train", "--genotype", str(tmp_path / "x2-genotype.json"), "--data", str(rgb),
                 "--out", str(tmp_path / "bad"), "--preset", "tiny", "--init-from",
                 str(tmp_path)]) == 2
    assert "no model.safetensors to start from" in capsys.readouterr().err


PIECES = ["--set", "train.schedule=constant", "--set", "train.val_every=100"]


def _same_state(a: Path, b: Path) -> None:
    """The checkpoints of two run folders hold bit-identical weights and optimiser state."""
    first, second = load_checkpoint(a / "last.pt"), load_checkpoint(b / "last.pt")
    assert first["iteration"] == second["iteration"]
    for key, value in first["model"].items():
        assert torch.equal(value, second["model"][key]), key
    for key, value in first["optimizer"]["state"].items():
        for name, tensor in value.items():
            assert torch.equal(tensor, second["optimizer"]["state"][key][name]), (key, name)


def _average(run: Path) -> dict[str, torch.Tensor]:
    """The weight average's network in a run's last.pt, by the model's own tensor names."""
    state = load_checkpoint(run / "last.pt")["average"]
    return {k.removeprefix("module."): v for k, v in state.items() if k.startswith("module.")}


def test_the_weight_average_is_what_is_scored_and_saved_and_resumes_exactly(
        tmp_path, photos, genotype_file):
    base = ["train", "--genotype", str(genotype_file), "--data", str(photos), "--preset", "tiny",
            "--quiet", *PIECES, "--set", "train.ema=0.9"]
    assert main([*base, "--out", str(tmp_path / "one"), "--iters", "30"]) == 0
    assert main([*base, "--out", str(tmp_path / "pieces"), "--iters", "7"]) == 0
    assert main(["train", "--out", str(tmp_path / "pieces"), "--resume", "--quiet", "--iters",
                 "30"]) == 0
    _same_state(tmp_path / "one", tmp_path / "pieces")
    average, raw = _average(tmp_path / "one"), load_checkpoint(tmp_path / "one" / "last.pt")
    for key, value in _average(tmp_path / "pieces").items():
        assert torch.equal(value, average[key]), key
    saved = load_file(str(tmp_path / "one" / "model.safetensors"))  # one validation: the end
    assert all(torch.equal(saved[k], average[k]) for k in saved)
    assert not all(torch.equal(saved[k], raw["model"][k]) for k in saved)
    metrics = [json.loads(line) for line in
               (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    spec = ModelSpec.load(tmp_path / "one")
    net = spec.build()
    net.load_state_dict(saved)
    cfg = resolve("denoise", config_file=tmp_path / "one" / "config.yaml")
    data = sorted(p for p in photos.iterdir() if p.name in spec.meta["data_split"]["val"])
    pairs = make_pairs({p: load_image(p, 1) for p in data}, cfg.task, cfg.seed,
                       cfg.train.val_crop)
    assert score_model(net, pairs, cfg.task, "cpu")[1]["psnr"] == pytest.approx(
        [m for m in metrics if "val_psnr" in m][-1]["val_psnr"], abs=1e-4)


def test_a_resume_can_start_the_weight_average(tmp_path, photos, genotype_file):
    from hinas.runtime.runs import save_checkpoint

    out = tmp_path / "run"
    assert main(["train", "--genotype", str(genotype_file), "--data", str(photos), "--preset",
                 "tiny", "--quiet", *PIECES, "--out", str(out), "--iters", "6"]) == 0
    state = load_checkpoint(out / "last.pt")
    del state["config"]["train"]["ema"]  # a checkpoint of a hinas from before the setting
    save_checkpoint(out / "last.pt", state)
    assert main(["train", "--out", str(out), "--resume", "--quiet", "--iters", "9", "--set",
                 "train.ema=0.5"]) == 0
    resumes = [json.loads(line) for line in (out / "resumes.jsonl").read_text().splitlines()]
    assert resumes[-1]["iter"] == 6 and resumes[-1]["changes"]["train.ema"] == [0.0, 0.5]
    assert load_checkpoint(out / "last.pt")["average"]["n_averaged"] == 3
    assert main(["train", "--out", str(out), "--resume", "--quiet", "--iters", "12"]) == 0
    rows = [json.loads(line) for line in (out / "campaign.jsonl").read_text().splitlines()]
    assert [(r["iter"], r["ema"]) for r in rows] == [(0, 0.0), (6, 0.0), (9, 0.5), (12, 0.5)]
    assert rows[-1]["gain_db"] is None  # iteration 6 is at half of 12, but scored raw weights


def test_the_constant_schedule_and_its_decay():
    t = TrainConfig(iters=10, lr=0.05, lr_min=0.0, warmup_iters=4, schedule="constant")
    assert [lr_factor(t, d) for d in (0, 3, 4, 10_000)] == pytest.approx([0.2, 0.8, 1, 1])
    assert train_module.schedule_end(t) is None  # open-ended until the decay has a start
    decaying = TrainConfig(lr=0.05, lr_min=0.0, schedule="constant", decay_from=100)
    assert train_module.schedule_end(decaying) == 120  # decay_iters 0: a fifth of 100
    assert [lr_factor(decaying, d) for d in (99, 100, 110, 120, 500)] == \
        pytest.approx([1, 1, 0.5, 0, 0])
    assert train_module.schedule_end(TrainConfig(schedule="constant", decay_from=100,
                                                 decay_iters=7)) == 107
    TrainConfig(schedule="constant", iters=1, warmup_iters=50).validate()  # a piece in warm-up
    with pytest.raises(HinasError, match="train.warmup_iters must be in 0..iters-1"):
        TrainConfig(iters=1, warmup_iters=50).validate()


def test_pieces_give_the_weights_of_one_run(tmp_path, photos, genotype_file):
    decay = ["--set", "train.decay_from=10", "--set", "train.decay_iters=6"]
    base = ["train", "--genotype", str(genotype_file), "--data", str(photos), "--preset", "tiny",
            "--quiet"]
    assert main([*base, "--out", str(tmp_path / "one"), *PIECES, *decay, "--iters", "30"]) == 0
    assert main([*base, "--out", str(tmp_path / "pieces"), *PIECES, *decay, "--iters", "7"]) == 0
    assert main(["train", "--out", str(tmp_path / "pieces"), "--resume", "--quiet", "--iters",
                 "30"]) == 0
    _same_state(tmp_path / "one", tmp_path / "pieces")
    assert load_checkpoint(tmp_path / "one" / "last.pt")["iteration"] == 16  # the decay's end
    rows = [json.loads(line) for line in
            (tmp_path / "pieces" / "campaign.jsonl").read_text().splitlines()]
    assert [(r["piece"], r["iter"], r["phase"]) for r in rows] == \
        [(0, 0, "start"), (1, 7, "train"), (2, 16, "done")]
    assert rows[2]["gain_db"] == pytest.approx(rows[2]["mean_psnr"] - rows[1]["mean_psnr"],
                                               abs=1e-3)  # row 1 is at ≤ half of 16
    assert 0 < rows[1]["cpu_minutes"] < rows[2]["cpu_minutes"]
    assert (tmp_path / "pieces" / "campaign.png").stat().st_size > 10_000


def test_budgeted_pieces_stop_on_the_clock_and_continue_exactly(tmp_path, photos, genotype_file,
                                                                monkeypatch, capsys):
    monkeypatch.setattr("hinas.runtime.campaign.FLAT_GAIN_DB", -math.inf)  # never flat
    base = ["train", "--genotype", str(genotype_file), "--data", str(photos), "--preset", "tiny",
            "--quiet"]
    out = tmp_path / "pieces"
    started = time.perf_counter()
    assert main([*base, "--out", str(out), *PIECES, "--budget", "6s"]) == 0
    assert time.perf_counter() - started < 6 * 1.5  # (± the load of a shared machine)
    assert "campaign (" in capsys.readouterr().out
    assert main(["train", "--out", str(out), "--resume", "--quiet", "--budget", "3s"]) == 0
    assert "resume for another piece" in capsys.readouterr().out
    rows = [json.loads(line) for line in (out / "campaign.jsonl").read_text().splitlines()]
    assert [r["piece"] for r in rows] == [0, 1, 2]
    assert rows[1]["budget_minutes"] == pytest.approx(6 / 60, abs=1e-3)
    done = rows[2]["iter"]
    assert 0 < rows[1]["iter"] < done
    assert main([*base, "--out", str(tmp_path / "one"), *PIECES, "--iters", str(done)]) == 0
    _same_state(tmp_path / "one", out)
    assert main(["train", "--out", str(out), "--resume", "--budget", "3s", "--iters", "9"]) == 2
    assert "--budget ends this piece of the run: drop --iters" in capsys.readouterr().err


def test_a_flat_campaign_decays_then_is_done(tmp_path, photos, genotype_file, monkeypatch,
                                             capsys):
    monkeypatch.setattr("hinas.runtime.campaign.FLAT_GAIN_DB", math.inf)  # every gain is flat
    base = ["train", "--genotype", str(genotype_file), "--data", str(photos), "--preset", "tiny",
            "--quiet"]
    out = tmp_path / "run"
    assert main([*base, "--out", str(out), *PIECES, "--iters", "5"]) == 0
    # 0 -> 5: no doubling
    assert "rising (no earlier score of the same weights at half" in capsys.readouterr().out
    assert main(["train", "--out", str(out), "--resume", "--quiet", "--iters", "10"]) == 0
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["decay_from"] == 10
    assert "flattened (" in capsys.readouterr().out  # the gain over iterations 5 -> 10
    assert main(["train", "--out", str(out), "--resume", "--quiet", "--iters", "100"]) == 0
    assert "done at iteration 12" in capsys.readouterr().out  # a decay of a fifth of 10
    assert main(["train", "--out", str(out), "--resume", "--quiet", "--iters", "100"]) == 0
    rows = [json.loads(line) for line in (out / "campaign.jsonl").read_text().splitlines()]
    assert [(r["iter"], r["phase"], r["decay_from"]) for r in rows[1:]] == \
        [(5, "train", None), (10, "decay", 10), (12, "done", 10)]  # then nothing to train
    monkeypatch.undo()
    straight = tmp_path / "straight"
    assert main([*base, "--out", str(straight), *PIECES, "--iters", "12", "--set",
                 "train.decay_from=10"]) == 0
    _same_state(straight, out)


def test_resume_can_start_the_decay_now(tmp_path, photos, genotype_file):
    base = ["train", "--genotype", str(genotype_file), "--data", str(photos), "--preset", "tiny",
            "--quiet"]
    out = tmp_path / "run"
    assert main([*base, "--out", str(out), *PIECES, "--iters", "6"]) == 0
    assert main(["train", "--out", str(out), "--resume", "--quiet", "--iters", "100", "--set",
                 "train.decay_from=1", "--set", "train.decay_iters=3"]) == 0
    assert load_checkpoint(out / "last.pt")["iteration"] == 9
    resumed = json.loads((out / "resumes.jsonl").read_text().splitlines()[-1])
    assert resumed["changes"]["train.decay_from"] == [0, 6]  # recorded as where it began


def test_resume_refuses_another_recipe_other_data_and_a_truncated_checkpoint(
        tmp_path, photos, genotype_file, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for path in photos.iterdir():
        (data / path.name).write_bytes(path.read_bytes())
    out = tmp_path / "run"
    assert main(["train", "--genotype", str(genotype_file), "--data", str(data), "--preset",
                 "tiny", "--quiet", "--out", str(out), *PIECES, "--iters", "4"]) == 0
    resume = ["train", "--out", str(out), "--resume", "--quiet", "--iters", "8"]
    capsys.readouterr()

    def refused(*extra: str) -> str:
        assert main([*resume, *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("hinas: error: ") and "\n" not in err
        return err

    assert "train.batch_size cannot change on --resume" in refused("--set", "train.batch_size=8")
    assert "data.path cannot change on --resume" in refused("--data", str(photos))
    write_photos(data, ("rocket",), size=96)
    err = refused()
    assert "data.path" in err and "1 added (e.g. rocket.png)" in err
    (data / "rocket.png").unlink()
    checkpoint = out / "last.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])
    assert "last.pt: unreadable checkpoint" in refused()


def test_the_checkpoint_holds_what_an_exact_resume_needs_and_fits_in_a_commit(tmp_path):
    rgb = write_photos(tmp_path / "rgb", RGB_PHOTOS[:4], size=64)
    sr = Genotype.load(Path(hinas.__file__).parent / "weights" / "sr-x4" / "genotype.json")
    out = train_tiny(tmp_path / "sr", rgb, sr, "--iters", "1", "--set", "train.optimizer=adamw",
                     "--set", "train.width_multiplier=3", "--set", "train.warmup_iters=0",
                     "--set", "train.batch_size=1")
    state = load_checkpoint(out / "last.pt")
    assert set(state) == {"model", "optimizer", "scheduler", "iteration", "best",
                          "pending_losses", "seconds", "cpu_seconds", "rng", "config"}
    assert (out / "last.pt").stat().st_size <= 5 * 2**20  # the largest zoo network on a GPU
