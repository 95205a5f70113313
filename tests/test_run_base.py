"""The run base under every search and training run: fresh start, exact resume with the allowed
changes taken and recorded, logs cut back to the checkpoint, the divergence error."""

import json
import math

import pytest
import torch
import yaml
from torch import nn

from hinas.config import resolve
from hinas.errors import HinasError
from hinas.runtime.run_base import Run
from hinas.runtime.runs import MetricsLog


class CountingRun(Run):
    """A run of a 2×2 linear layer that counts iterations and logs one record each."""

    section, step, unit = "train", "iter", "iteration"
    not_compared = ("search.",)

    def __init__(self, cfg, out, resume=False):
        super().__init__(cfg, out, resume, quiet=True)
        self.iteration, self.applied = 0, None
        self.net = self._place(nn.Linear(2, 2))
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=self.cfg.train.lr)
        self.extra = MetricsLog(self.out / "extra.jsonl")
        self._open("count", ["images"], {"train": ["a.png", "b.png"]}, (self.extra,))

    @property
    def done(self):
        return self.iteration

    def _own_state(self):
        return {"iteration": self.iteration, "optimizer": self.optimizer.state_dict()}

    def _load_own_state(self, state):
        self.iteration = state["iteration"]
        self.optimizer.load_state_dict(state["optimizer"])

    def _resume_with(self, changes):
        self.applied = changes
        for group in self.optimizer.param_groups:
            group["lr"] = self.cfg.train.lr
        return changes

    def _diverged(self, problem, where):
        return HinasError(f"{problem} at {where}; kept {self.unit} {self.saved}")

    def advance(self, iterations, save_at=()):
        for _ in range(iterations):
            self.iteration += 1
            self._log({"iter": self.iteration, "loss": 1.0 / self.iteration}, None)
            self.extra.append({"iter": self.iteration})
            if self.iteration in save_at:
                self.best = {"psnr": 20.0 + self.iteration, "ssim": 0.5, "iter": self.iteration}
                self._save_last()


def _cfg(*overrides):
    return resolve("denoise", "tiny", overrides=list(overrides))


def test_a_fresh_run_writes_its_config_and_replaces_stale_logs(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"iter": 9}\n')
    (tmp_path / "extra.jsonl").write_text('{"iter": 9}\n')
    run = CountingRun(_cfg(), tmp_path)
    assert yaml.safe_load((tmp_path / "config.yaml").read_text()) == run.cfg.to_dict()
    assert not (tmp_path / "metrics.jsonl").exists() and not (tmp_path / "extra.jsonl").exists()
    assert run.best == {"psnr": -math.inf, "ssim": 0.0, "iter": 0} and run.saved == 0
    assert "count started: " in (tmp_path / "run.log").read_text()


def test_resume_restores_the_checkpoint_and_cuts_the_logs_back(tmp_path):
    run = CountingRun(_cfg(), tmp_path)
    run.advance(3, save_at=(2,))
    weights = {k: v.clone() for k, v in run.net.state_dict().items()}
    with torch.no_grad():
        run.net.weight.add_(1.0)  # after the checkpoint: lost on resume
    resumed = CountingRun(_cfg(), tmp_path, resume=True)
    assert resumed.iteration == resumed.saved == 2
    assert resumed.best == {"psnr": 22.0, "ssim": 0.5, "iter": 2}
    for key, value in resumed.net.state_dict().items():
        assert torch.equal(value, weights[key])
    assert [r["iter"] for r in MetricsLog(tmp_path / "metrics.jsonl").read()] == [1, 2]
    assert [r["iter"] for r in MetricsLog(tmp_path / "extra.jsonl").read()] == [1, 2]
    assert resumed.applied == {} and not (tmp_path / "resumes.jsonl").exists()
    assert "count resumed after iteration 2" in (tmp_path / "run.log").read_text()


def test_resume_continues_the_random_generators(tmp_path):
    run = CountingRun(_cfg(), tmp_path)
    run.advance(1, save_at=(1,))
    expected = torch.rand(3)
    CountingRun(_cfg(), tmp_path, resume=True)
    assert torch.equal(torch.rand(3), expected)


def test_allowed_changes_are_taken_and_recorded(tmp_path, capsys):
    CountingRun(_cfg(), tmp_path).advance(2, save_at=(2,))
    resumed = CountingRun(_cfg("train.lr=0.01", "search.batch_size=6"), tmp_path, resume=True)
    assert resumed.applied == {"train.lr": (0.05, 0.01)}  # search.*: not this run's
    assert resumed.optimizer.param_groups[0]["lr"] == 0.01
    assert "resumed with changed settings: train.lr 0.05 -> 0.01" in capsys.readouterr().err
    assert [json.loads(line) for line in (tmp_path / "resumes.jsonl").read_text().splitlines()] \
        == [{"iter": 2, "changes": {"train.lr": [0.05, 0.01]}}]
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["train"]["lr"] == 0.01


def test_other_changes_and_a_missing_checkpoint_are_refused(tmp_path):
    with pytest.raises(HinasError, match="nothing to resume"):
        CountingRun(_cfg(), tmp_path, resume=True)
    CountingRun(_cfg(), tmp_path).advance(1, save_at=(1,))
    with pytest.raises(HinasError, match=r"train.crop cannot change on --resume"):
        CountingRun(_cfg("train.crop=32"), tmp_path, resume=True)


def test_a_non_finite_value_is_the_runs_divergence_error(tmp_path):
    run = CountingRun(_cfg(), tmp_path)
    run.advance(2, save_at=(1,))
    with pytest.raises(HinasError, match=r"^loss became nan at iteration 3; kept iteration 1$"):
        with run._guarded("iteration 3", "loss became "):
            raise FloatingPointError(math.nan)
    with run._guarded("iteration 3"):
        pass  # nothing non-finite: nothing raised
