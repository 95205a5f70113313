"""Distributed search with torchrun: 2 CPU processes over gloo at the tiny preset agree on α/β and
the genotype, and only rank 0 writes the run folder; bad launches are one-line errors."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from hinas.cli import main
from hinas.space.genotype import Genotype
from tiny_runs import write_photos

WORKER = Path(__file__).with_name("distributed_worker.py")
RUN_FILES = {"config.yaml", "metrics.jsonl", "run.log", "arch_history.jsonl", "last.pt", "best.pt",
             "genotype.json", "architecture.png", "curves.png", "arch_evolution.png"}


def torchrun(*args: str, processes: int = 2) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           f"--nproc_per_node={processes}", *args],
                          capture_output=True, text=True, env=env, timeout=300, check=False)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return write_photos(tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="module")
def two_rank_run(photos, tmp_path_factory):
    folder = tmp_path_factory.mktemp("dist")
    out, dump = folder / "run", folder / "dump"
    dump.mkdir()
    done = torchrun(str(WORKER), str(out), str(photos), str(dump))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "hinas: 2 processes (gloo), effective batch 2 (1 per process)" in done.stderr
    ranks = [json.loads((dump / f"rank{r}.json").read_text()) for r in range(2)]
    return out, ranks


def test_ranks_agree_on_alpha_beta_and_genotype(two_rank_run):
    out, (rank0, rank1) = two_rank_run
    assert rank0 == rank1
    saved = Genotype.load(out / "genotype.json").to_dict()
    for key in ("path", "cells", "alpha", "beta"):
        assert saved[key] == rank0[key], key
    best = torch.load(out / "best.pt", map_location="cpu", weights_only=False)["model"]
    assert best["alpha"].tolist() == rank0["raw_alpha"]
    assert best["beta"].tolist() == rank0["raw_beta"]


def test_rank_zero_alone_writes_a_complete_run_folder(two_rank_run):
    out, _ = two_rank_run
    assert {p.name for p in out.iterdir()} == RUN_FILES  # no stray or temporary files
    log = (out / "run.log").read_text()
    assert log.count("search started") == 1 and log.count("epoch 4/4") == 1  # one writer
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["distributed"] == {"world_size": 2, "backend": "gloo"}
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    assert all(r["world_size"] == 2 and r["effective_batch"] == cfg["search"]["batch_size"]
               and r["rank_batch"] == cfg["search"]["batch_size"] // 2 for r in records)


def test_resume_needs_the_same_number_of_processes(two_rank_run, photos, capsys):
    out, _ = two_rank_run
    assert main(["search", "--resume", "--out", str(out), "--data", str(photos), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "made by 2 process(es)" in err and "--nproc_per_node=2" in err


@pytest.mark.parametrize("setting, message", [
    ("search.batch_size=3", "batch size 3 is not divisible by the 2 processes"),
    ("search.a_batch_size=5", "batch size 5 is not divisible by the 2 processes"),
    ("distributed.backend=nccl", "'nccl' does not run on cpu devices; use gloo"),
], ids=["batch", "a_batch", "backend"])
def test_bad_launch_is_one_line_on_rank_zero(photos, tmp_path, setting, message):
    done = torchrun("-m", "hinas", "search", "--preset", "tiny", "--quiet", "--data",
                    str(photos), "--out", str(tmp_path / "run"), "--set", setting)
    lines = [line for line in done.stderr.splitlines() if line.startswith("hinas: error:")]
    assert done.returncode != 0 and len(lines) == 1 and message in lines[0], done.stderr[-2000:]
    assert "]: Traceback" not in done.stderr  # no rank's traceback (torchrun reports its own)
    assert not (tmp_path / "run" / "last.pt").exists()


def test_rank_zero_reports_even_when_another_rank_meets_the_error_first(photos, tmp_path):
    done = torchrun(str(Path(__file__).with_name("slow_rank_zero.py")), "search", "--preset",
                    "tiny", "--quiet", "--data", str(photos), "--out", str(tmp_path / "run"),
                    "--set", "search.batch_size=3")
    lines = [line for line in done.stderr.splitlines() if line.startswith("hinas: error:")]
    assert done.returncode != 0 and lines == [
        "hinas: error: the batch size 3 is not divisible by the 2 processes (every process "
        "takes an equal share of each batch)"], done.stderr[-2000:]
    assert not (tmp_path / "run").exists()


def _rank_pid(launcher: int, rank: int) -> int | None:
    """The pid of the worker of `rank` that torchrun process `launcher` started."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            env = (stat.parent / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == launcher and f"RANK={rank}".encode() in env:
            return int(stat.parent.name)
    return None


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_a_dying_rank_stops_cleanly_and_resume_is_exact(photos, tmp_path):
    args = ["-m", "hinas", "search", "--preset", "tiny", "--quiet", "--data", str(photos),
            "--set", "search.epochs=6", "--seed", "2"]
    straight = torchrun(*args, "--out", str(tmp_path / "straight"))
    assert straight.returncode == 0, straight.stderr[-2000:]

    out = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launcher = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone",
                                 "--nproc_per_node=2", *args, "--out", str(out)],
                                stderr=subprocess.PIPE, text=True, env=env)
    log = out / "metrics.jsonl"
    while launcher.poll() is None and not (log.exists() and len(log.read_text().split()) >= 2):
        time.sleep(0.05)
    pid = _rank_pid(launcher.pid, 1)
    assert pid is not None, "the run finished before rank 1 could be killed"
    os.kill(pid, signal.SIGKILL)
    stderr = launcher.communicate(timeout=120)[1]
    lines = [line for line in stderr.splitlines() if line.startswith("hinas: error:")]
    assert launcher.returncode != 0 and len(lines) == 1, stderr[-2000:]
    assert "another process of the distributed run stopped" in lines[0]
    assert not (out / "genotype.json").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files

    resumed = torchrun("-m", "hinas", "search", "--resume", "--out", str(out), "--quiet",
                       "--data", str(photos))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = Genotype.load(tmp_path / "straight" / "genotype.json").to_dict()
    b = Genotype.load(out / "genotype.json").to_dict()
    assert all(a[k] == b[k] for k in ("path", "cells", "alpha", "beta"))
