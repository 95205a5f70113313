"""Device execution options testable on the CPU: mixed precision (bf16 autocast, fp16 with a
gradient scaler), channels-last equivalence, seeded loader workers, TensorBoard scalars."""

import json
import sys

import numpy as np
import pytest
import torch
import yaml
from torch.utils.data import Dataset

from hinas.config import TaskConfig, load_config, resolve
from hinas.data.datasets import PatchDataset
from hinas.data.degradations import build_degradation
from hinas.errors import HinasError
from hinas.measures.losses import build_loss
from hinas.models.architectures import DerivedNet
from hinas.runtime import execution
from hinas.runtime.engine import optimisation_step
from hinas.runtime.execution import Precision, amp_dtype, make_loader
from hinas.runtime.scalars import ScalarLog
from tiny_runs import tiny_genotype, train_tiny, write_photos

CPU = torch.device("cpu")


def tiny_net() -> DerivedNet:
    torch.manual_seed(0)
    return DerivedNet(tiny_genotype(TaskConfig(name="denoise", sigma=[25.0])))


def test_amp_modes_pick_their_dtype(monkeypatch):
    assert amp_dtype("off", CPU) is None
    assert amp_dtype("bf16", CPU) == torch.bfloat16
    assert amp_dtype("fp16", CPU) == torch.float16
    monkeypatch.setattr(execution, "native_cpu_bf16", lambda: True)
    assert amp_dtype("auto", CPU) == torch.bfloat16
    monkeypatch.setattr(execution, "native_cpu_bf16", lambda: False)  # emulated bf16 is slower
    assert amp_dtype("auto", CPU) is None


def test_precision_is_per_job_and_the_cpu_preset_trains_channels_last_in_fp32(tmp_path):
    cfg = resolve("denoise", "cpu")
    assert (cfg.train.amp, cfg.train.channels_last) == ("off", True)
    assert cfg.search.amp == "off"
    legacy = cfg.to_dict()  # a run folder of an older version: one runtime.amp for both jobs
    for job in ("search", "train"):
        del legacy[job]["amp"]
    legacy["runtime"]["amp"] = "bf16"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(legacy))
    old = load_config(tmp_path / "config.yaml")
    assert (old.search.amp, old.train.amp) == ("bf16", "bf16")
    with pytest.raises(HinasError, match="train.amp must be one of off, auto, bf16, fp16"):
        resolve("denoise", "cpu", overrides=["train.amp=fp8"])
    with pytest.raises(HinasError, match="quote the word, e.g. 'off'"):
        resolve("denoise", "cpu", overrides=["train.amp=off"])
    assert resolve("denoise", "cpu", overrides=["train.amp='off'"]).train.amp == "off"


@pytest.mark.parametrize("mode, dtype", [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_mixed_precision_step_runs_in_low_precision_and_learns(mode, dtype):
    net, precision = tiny_net(), Precision(mode, CPU)
    seen = []
    net.stem.conv0.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    with precision.autocast():
        net(torch.rand(1, 1, 16, 16))
    assert seen == [dtype]  # convolutions run in low precision (the residual sum in fp32)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    gen = torch.Generator().manual_seed(1)
    gt = torch.rand(4, 1, 24, 24, generator=gen)
    lq = gt + 0.1 * torch.randn(gt.shape, generator=gen)
    losses = [optimisation_step(net, optimizer, [], build_loss("mse", 0.0), lq, gt, 0.4,
                                precision=precision) for _ in range(15)]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert bool(precision.scalers) == (mode == "fp16")  # fp16 alone needs loss scaling
    assert all(p.dtype == torch.float32 for p in net.parameters())


def test_channels_last_gives_the_same_output_and_gradients():
    x = torch.rand(2, 1, 29, 31)
    results = []
    for fmt in (torch.contiguous_format, torch.channels_last):
        net = tiny_net().to(memory_format=fmt)
        y = net(x.to(memory_format=fmt))
        y.square().mean().backward()
        results.append((y.detach().contiguous(), [p.grad.clone() for p in net.parameters()]))
    (y0, g0), (y1, g1) = results
    assert torch.allclose(y0, y1, atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(g0, g1, strict=True))


class GlobalRandom(Dataset):
    """Items drawn from a worker's global generators (what seeding must make reproducible)."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.tensor([np.random.random(), torch.rand(()).item()], dtype=torch.float64)


def test_loader_workers_are_seeded_reproducibly_and_differently():
    def draw(seed) -> torch.Tensor:
        return torch.cat(list(make_loader(GlobalRandom(), 1, 2, seed)))

    first, again, other = draw((0, 0, 1)), draw((0, 0, 1)), draw((0, 1, 1))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert len(set(first[:, 0].tolist())) == 8  # the two workers do not repeat each other


def test_patches_do_not_depend_on_the_number_of_workers(tmp_path):
    photos = write_photos(tmp_path / "p", size=64)
    images = [np.asarray(__import__("PIL.Image").Image.open(p)) for p in sorted(photos.iterdir())]
    ds = PatchDataset(images, 24, build_degradation("denoise", sigma=[25.0]), length=6, seed=4)
    batches = [[b for pair in make_loader(ds, 3, workers, 0) for b in pair] for workers in (0, 2)]
    assert all(torch.equal(a, b) for a, b in zip(*batches, strict=True))


def test_train_records_runtime_options_and_writes_tensorboard_scalars(tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    genotype = tiny_genotype(TaskConfig(name="denoise", sigma=[25.0]))
    run = train_tiny(tmp_path / "run", write_photos(tmp_path / "photos"), genotype,
                     "--amp", "bf16", "--channels-last", "--workers", "1", "--tensorboard")
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["runtime"] == {"tensorboard": True}
    assert cfg["train"]["channels_last"] is True and cfg["train"]["amp"] == "bf16"
    assert cfg["data"]["workers"] == 1
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in logged if "loss" in r]
    assert [e.step for e in events.Scalars("loss")] == [r["iter"] for r in logged if "loss" in r]
    assert np.allclose([e.value for e in events.Scalars("loss")], losses, rtol=1e-6)
    assert "val_psnr" in events.Tags()["scalars"]


def test_tensorboard_without_the_extra_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(HinasError, match=r'pip install "hinas\[tensorboard\]"'):
        ScalarLog(tmp_path, enabled=True)
    ScalarLog(tmp_path, enabled=False).add({"iter": 1, "loss": 0.5}, "iter")
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("name, built, count, message", [
    ("cuda", False, 0, "--device cuda requested but this torch has no CUDA; use --device cpu"),
    ("cuda:7", False, 0, "--device cuda:7 requested but this torch has no CUDA"),
    ("cuda", True, 0, "--device cuda requested but no CUDA device is available"),
    ("cuda:7", True, 2, "--device cuda:7: this machine has 2 CUDA device(s), cuda:0 to cuda:1"),
    ("meta", False, 0, "--device meta: hinas runs on cpu or cuda[:N], not meta"),
    ("xyz", False, 0, "--device xyz: not a device; use cpu or cuda[:N]"),
])
def test_a_missing_or_unknown_device_is_named_with_what_there_is(monkeypatch, name, built, count,
                                                                 message):
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: built)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    with pytest.raises(HinasError) as err:
        execution.check_device(name)
    assert str(err.value).startswith(message)


def test_an_existing_device_is_returned():
    assert execution.check_device("cpu") == CPU
