"""The family benchmark's bookkeeping: which photographs it holds back, how a fresh work folder
continues from the committed run states, and how the 120-minute stage's choice is read against
its targets."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))  # the repository root: `benchmarks`
from benchmarks import families  # noqa: E402

BM3D = {"15.0": 31.0, "25.0": 28.5, "50.0": 25.5}


def _run(family, seed, psnr50, latency=0.1, minutes=120.0):
    return {"family": family, "budget_minutes": minutes, "seed": seed, "latency_s": latency,
            "heldout": {"15.0": 30.0, "25.0": psnr50 + 3.0, "50.0": psnr50}}


def test_every_fifth_val_photograph_by_name_is_held_back(tmp_path):
    for split, count in (("train", 3), ("val", 10)):
        (tmp_path / split).mkdir()
        for k in range(count, 0, -1):
            (tmp_path / split / f"{k:03d}.jpg").write_bytes(b"")
    train, seen, back = families.photographs(tmp_path)
    assert [p.name for p in back] == ["001.jpg", "006.jpg"]
    assert len(train) == 3 and len(seen) == 8 and not set(seen) & set(back)


def test_the_choice_is_the_best_mean_over_seeds_at_sigma_50():
    runs = {"a0": _run("start2-macs", 0, 25.6), "a1": _run("start2-macs", 1, 25.4),
            "b0": _run("resolution-macs", 0, 25.55, latency=0.3),
            "w0": _run("width", 0, 25.0, latency=0.25),
            "short": _run("ffdnet-macs", 0, 26.0, minutes=30.0)}
    chosen = families.choice(runs, BM3D, bm3d_latency=5.0)
    assert chosen["family"] == "resolution-macs"  # 25.55 > the mean 25.5 of the two seeds
    assert chosen["over_width_sigma50"] == pytest.approx(0.55)
    assert chosen["over_bm3d"]["50.0"] == pytest.approx(0.05)
    assert chosen["bm3d_speedup"] == pytest.approx(16.7)
    assert chosen["targets_met"]
    runs["b0"] = _run("resolution-macs", 0, 25.45, latency=0.3)
    runs["w0"] = _run("width", 0, 25.1, latency=0.25)
    chosen = families.choice(runs, BM3D, bm3d_latency=5.0)
    assert chosen["family"] == "start2-macs" and chosen["seeds"] == 2
    assert chosen["over_bm3d"]["50.0"] == pytest.approx(0.0)
    assert not chosen["targets_met"]  # at BM3D, but only 0.4 dB over `width`
    assert families.choice({"short": runs["short"]}, BM3D, 5.0) == {}


def test_a_fresh_work_folder_continues_from_the_committed_state(tmp_path, monkeypatch):
    committed = tmp_path / "committed" / "width_120m_s0"
    committed.mkdir(parents=True)
    (committed / "last.pt").write_bytes(b"state")
    monkeypatch.setattr(families, "COMMITTED", tmp_path / "committed")
    out = families.run_folder(tmp_path / "work", "width_120m_s0")
    assert (out / "last.pt").read_bytes() == b"state"
    (out / "last.pt").write_bytes(b"later")
    assert (families.run_folder(tmp_path / "work", "width_120m_s0") / "last.pt"
            ).read_bytes() == b"later"  # a work folder's own state is never overwritten


def test_saving_copies_only_the_runs_this_process_trained(tmp_path, monkeypatch):
    monkeypatch.setattr(families, "COMMITTED", tmp_path / "committed")
    for run in ("width_120m_s0", "start2-macs_120m_s0"):  # the second one another process's
        (tmp_path / "work" / run).mkdir(parents=True)
        (tmp_path / "work" / run / "last.pt").write_bytes(b"state")
    families.save_state(tmp_path / "work", ["width_120m_s0"])
    assert [p.name for p in (tmp_path / "committed").iterdir()] == ["width_120m_s0"]
    assert (tmp_path / "committed" / "width_120m_s0" / "last.pt").read_bytes() == b"state"
    families.save_state(tmp_path / "work")  # nothing trained: every run the work folder holds
    assert len(list((tmp_path / "committed").iterdir())) == 2
