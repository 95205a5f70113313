"""Selecting a genotype from a trained supernet: one-hot α/β of a genotype, every width path,
the signals (α log-probability, one-shot with BatchNorm re-estimation, perturbation importance),
the collapse guard, `search.select` / `search.width` end to end and `hinas arch select`."""

import json
import math

import numpy as np
import pytest
import torch

from hinas.cli import main
from hinas.config import SELECTIONS, WIDTH_SELECTIONS, resolve
from hinas.errors import HinasError
from hinas.jobs.search import open_search, reselect
from hinas.runtime.selection import (
    SIGNALS,
    WIDTHS,
    Scorer,
    alpha_logprob,
    oneshot_score,
    path_oneshot_scores,
    perturb_score,
    perturbation_importance,
    select_genotype,
    selection_cost,
)
from hinas.space.derive import collapse, derive_genotype
from hinas.space.genotype import Genotype
from hinas.space.supernet import Supernet, all_paths, count_paths, genotype_arch, sample_arch


@pytest.fixture(scope="module")
def searched(photo_folder, tmp_path_factory):
    """A tiny HiNAS search run folder."""
    out = tmp_path_factory.mktemp("sel") / "run"
    assert main(["search", "--preset", "tiny", "--quiet", "--data", str(photo_folder),
                 "--out", str(out)]) == 0
    return out


def test_every_width_path_and_the_one_hot_weights_of_a_genotype():
    for layers in (1, 2, 3, 4):
        paths = all_paths(layers)
        assert len(paths) == count_paths(layers)[0][0] == len({tuple(p) for p in paths})
    assert len(all_paths(3)) == 12
    cfg = resolve("denoise", "cpu")
    genotype = sample_arch(cfg.space, cfg.task, np.random.default_rng(3)).genotype
    arch = genotype_arch(genotype)
    assert arch.alpha.shape == (3, 14, 7) and arch.alpha.sum() == 3 * 4 * 2
    assert [len(on) for on in arch.active] == [8, 8, 8]
    assert arch.beta.sum() == 3
    for layer, level in enumerate(genotype.path):  # the move into `level` is the one set
        before = ([0] + genotype.path)[layer]
        assert arch.beta[layer, before, level - before + 1] == 1


def test_alpha_log_probability_is_the_sum_over_kept_terms_and_moves():
    cfg = resolve("denoise", "cpu")
    genotype = sample_arch(cfg.space, cfg.task, np.random.default_rng(0)).genotype
    net = Supernet(cfg.space, cfg.task)
    alpha, beta = net.alpha_weights().detach().numpy(), net.beta_weights().detach().numpy()
    assert alpha_logprob(genotype, alpha, beta) == pytest.approx(3 * 8 * math.log(1 / 7))
    favoured = alpha.copy()
    row, col = next(iter(genotype_arch(genotype).active[0]))
    favoured[0, row] = 0.01
    favoured[0, row, col] = 1 - 0.01 * 6
    assert alpha_logprob(genotype, favoured, beta) > alpha_logprob(genotype, alpha, beta)


def test_collapse_guard_flags_a_layer_of_skips_only_once_alpha_moved():
    """A layer of kept skip_connect edges collapsed when skip_connect leads there by more than
    noise; at uniform α (or nearly: the demo's epochs) the same cells are no collapse."""
    cfg = resolve("denoise", "cpu")
    genotype = sample_arch(cfg.space, cfg.task, np.random.default_rng(0)).genotype
    genotype.cells[1] = [[(0, "skip_connect"), (1, "skip_connect")] for _ in range(4)]
    skip = cfg.space.ops.index("skip_connect")
    alpha = np.full((3, 14, 7), 1 / 7)
    alpha[1, :, skip] += 0.01  # leads by noise: the demo printed collapses at this
    genotype.alpha = (alpha / alpha.sum(-1, keepdims=True)).tolist()
    guard = collapse(genotype)
    assert guard["collapsed_layers"] == [] and guard["skip_kept"][1] == 8
    assert guard["skip_kept_moved"][1] == 0 and guard["edges_moved"] == [0, 0, 0]
    assert guard["none_weight"] == [pytest.approx(1 / 7, abs=2e-3)] * 3
    alpha[1, :, skip] += 0.1
    genotype.alpha = (alpha / alpha.sum(-1, keepdims=True)).tolist()
    guard = collapse(genotype)
    assert guard["collapsed_layers"] == [1] and guard["skip_kept_moved"][1] == 8
    assert guard["edges_moved"] == [0, 14, 0]


def test_signals_on_a_trained_supernet(searched):
    cfg, net, scorer = open_search(searched)
    genotype = Genotype.load(searched / "genotype.json")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    value = oneshot_score(scorer, genotype)
    assert 5 < value < 60
    for key, tensor in net.state_dict().items():  # BN statistics restored after re-estimation
        assert torch.equal(tensor, before[key]), key
    assert oneshot_score(scorer, genotype) == pytest.approx(value)
    ranked = path_oneshot_scores(scorer)
    assert sorted(p for _, p in ranked) == all_paths(cfg.space.layers)
    base, op_drop, move_drop = perturbation_importance(scorer)
    assert op_drop.shape == (cfg.space.layers, 5, len(cfg.space.ops))
    assert np.all(op_drop[..., cfg.space.ops.index("none")] == 0)
    assert np.count_nonzero(op_drop) > 0
    expected = sum(op_drop[layer, row, col] for layer, on in
                   enumerate(genotype_arch(genotype).active) for row, col in on)
    expected += move_drop[genotype_arch(genotype).beta.numpy() > 0].sum()
    assert perturb_score(genotype, op_drop, move_drop) == pytest.approx(expected)
    assert genotype.meta["selection"]["select"] == "alpha"  # no signal ranked better
    assert derive_genotype(net).cells == genotype.cells


def test_the_config_offers_the_registered_selections():
    assert sorted(SELECTIONS) == SIGNALS.names() and sorted(WIDTH_SELECTIONS) == WIDTHS.names()


@pytest.mark.parametrize("width", WIDTHS.names())
@pytest.mark.parametrize("select", SIGNALS.names())
def test_every_selection_scores_selects_and_counts_its_evaluations(searched, select, width):
    cfg, net, scorer = open_search(searched, [f"search.select={select}",
                                              f"search.width={width}"])
    signal = SIGNALS.get(select)
    measured = signal.measure(scorer, None)
    genotype = Genotype.load(searched / "genotype.json")
    assert math.isfinite(signal.score(genotype, measured, scorer)) and signal.summary
    calls = []
    selected = select_genotype(net, cfg, scorer, {}, np.random.default_rng(0),
                               lambda: calls.append(1))
    assert len(calls) == selection_cost(cfg)  # the progress bar ends where it should
    record = selected.meta["selection"]
    assert (record["select"], record["width"]) == (select, width)
    assert selected.task == genotype.task and len(selected.cells) == cfg.space.layers


def test_scorer_needs_validation_images():
    cfg = resolve("denoise", "tiny")
    with pytest.raises(HinasError, match="needs validation images"):
        Scorer(Supernet(cfg.space, cfg.task), [], cfg, "cpu")


@pytest.mark.parametrize("select", ["perturb", "oneshot"])
def test_reselect_by_another_signal(searched, tmp_path, capsys, select):
    out = tmp_path / "g.json"
    assert main(["arch", "select", str(searched), "--select", select, "--width", "oneshot",
                 "-o", str(out), "--quiet"]) == 0
    genotype = Genotype.load(out)
    record = genotype.meta["selection"]
    assert record["select"] == select and record["width"] == "oneshot"
    assert genotype.path == record["path_psnr"][0]["path"]
    assert len(record["path_psnr"]) == len(all_paths(genotype.space.layers))
    if select == "perturb":
        importance = np.array(record["op_importance"])
        for layer, cell in enumerate(genotype.cells):  # each kept op is its edge's most important
            for j, node in enumerate(cell):
                for inp, op in node:
                    row = [(n, i) for n in range(len(cell)) for i in range(n + 2)].index((j, inp))
                    col = genotype.space.ops.index(op)
                    assert importance[layer, row, col] == importance[layer, row, 1:].max()
    else:
        assert record["candidates"] == 1 + resolve("denoise", "tiny").search.samples
    assert "selected by " + select in capsys.readouterr().out


def test_search_selects_by_the_configured_signal(photo_folder, tmp_path):
    out = tmp_path / "run"
    assert main(["search", "--preset", "tiny", "--quiet", "--data", str(photo_folder),
                 "--out", str(out), "--set", "search.select=perturb",
                 "--set", "search.width=oneshot"]) == 0
    genotype = Genotype.load(out / "genotype.json")
    assert genotype.meta["selection"]["select"] == "perturb"
    assert genotype.meta["selection"]["viterbi_path"] is not None
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    searched = [r for r in records if r["phase"] == "search"]
    assert all("collapsed_layers" in r and len(r["skip_kept"]) == 2 for r in searched)
    assert all("collapsed_layers" not in r for r in records if r["phase"] == "warmup")
    assert reselect(out, ["search.select=perturb", "search.width=oneshot"],
                    quiet=True).cells == genotype.cells


@pytest.mark.parametrize("override, words", [
    ("search.select=best", "search.select must be one of alpha, oneshot, perturb"),
    ("search.width=greedy", "search.width must be one of viterbi, oneshot"),
])
def test_unknown_selection_is_a_one_line_error(photo_folder, tmp_path, capsys, override, words):
    assert main(["search", "--preset", "tiny", "--quiet", "--data", str(photo_folder),
                 "--out", str(tmp_path / "r"), "--set", override]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_reselect_refuses_what_has_no_supernet(tmp_path, capsys):
    assert main(["arch", "select", str(tmp_path), "-o", str(tmp_path / "g.json")]) == 2
    assert "not a search run folder" in capsys.readouterr().err


def test_selection_runs_on_the_device_the_config_names(searched):
    """The supernet is moved to the run's device and every tensor read back into NumPy comes
    through the CPU (on CUDA, `.numpy()` of a device tensor fails); only the CPU is tested."""
    cfg, net, scorer = open_search(searched, ["device=cpu"])
    assert {p.device for p in net.parameters()} == {torch.device(cfg.device)} == {scorer.device}
    base, op_drop, move_drop = perturbation_importance(scorer)
    genotype = Genotype.load(searched / "genotype.json")
    assert math.isfinite(perturb_score(genotype, op_drop, move_drop)) and base > 0
    assert reselect(searched, ["device=cpu", "search.select=perturb"], quiet=True).cells
