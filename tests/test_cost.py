"""The cost model and searching under a budget: a table predicts a genotype's MACs exactly, its
expected cost under softmax(α), softmax(β)
is the mean cost of the architectures they draw and is differentiable, a table of another space,
width or machine is refused, and a search under --max-macs ends with a genotype that fits (HiNAS
RSWS and the zero-cost search of the most parameters), or refuses a budget below the cheapest
network in one line."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from hinas.cli import main
from hinas.config import SpaceConfig, TaskConfig, resolve
from hinas.errors import HinasError
from hinas.measures.complexity import count_macs, count_params
from hinas.models.architectures import DerivedNet
from hinas.runtime.budget import Budget, search_budget
from hinas.runtime.cost_table import CostTable, measure_genotype, measure_table
from hinas.runtime.strategies import STRATEGIES
from hinas.space.genotype import Genotype
from hinas.space.supernet import Supernet, path_beta, sample_arch
from tiny_runs import write_photos

SIZE = (61, 45)
SPACES = [SpaceConfig(layers=3, nodes=2, width=3),
          SpaceConfig(layers=3, nodes=2, width=3, start_scale=2),
          SpaceConfig(layers=3, nodes=2, width=3, levels="resolution")]


@pytest.mark.parametrize("space", SPACES, ids=["width", "start2", "resolution"])
def test_a_table_predicts_the_macs_of_any_genotype(space):
    task = TaskConfig()
    table = measure_table(space, task, 1.5, SIZE, "macs")
    rng = np.random.default_rng(0)
    for _ in range(5):
        genotype = sample_arch(space, task, rng).genotype
        real = count_macs(DerivedNet(genotype, 1.5), 1, SIZE[1], SIZE[0]) / 1e9
        assert measure_genotype(genotype, 1.5, SIZE, "macs") == pytest.approx(real)
        assert table.predict(genotype) == pytest.approx(real)
    assert 0 < table.cheapest(space) < table.predict(genotype)


def test_the_expected_cost_is_the_mean_over_the_architectures_drawn():
    space, task = SPACES[0], TaskConfig()
    table = measure_table(space, task, 1.0, SIZE, "macs")
    net = Supernet(space, task)
    rng = np.random.default_rng(1)
    for path in ([0, 0, 0], [0, 1, 2], [1, 1, 0]):
        with torch.no_grad():
            expected = table.expected(net.alpha_weights(), path_beta(path, 3)).item()
        drawn = [table.predict(dataclasses.replace(sample_arch(space, task, rng).genotype,
                                                   path=path)) for _ in range(1500)]
        assert expected == pytest.approx(np.mean(drawn), rel=0.01)
    alpha = net.alpha.detach().clone().requires_grad_(True)
    beta = net.beta.detach().clone().requires_grad_(True)
    net.alpha, net.beta = torch.nn.Parameter(alpha), torch.nn.Parameter(beta)
    table.expected(net.alpha_weights(), net.beta_weights()).backward()
    assert net.alpha.grad.abs().sum() > 0 and net.beta.grad.abs().sum() > 0


def test_a_table_of_another_space_width_or_machine_is_refused(tmp_path):
    space, task = SPACES[0], TaskConfig()
    table = measure_table(space, task, 1.0, SIZE, "latency", repeats=1)
    assert table.machine and table.unit == "ms" and table.stem > 0
    path = table.save(tmp_path / "t.json")
    loaded = CostTable.load(path)
    assert loaded == table
    loaded.check(space, task, 1.0, table.machine, str(path))
    for args, word in [((SPACES[1], task, 1.0, table.machine), "start_scale"),
                       ((space, TaskConfig(channels=3), 1.0, table.machine), "channels"),
                       ((space, task, 2.0, table.machine), "width multiplier"),
                       ((space, task, 1.0, "another CPU, 1 thread(s)"), "another machine")]:
        with pytest.raises(HinasError, match=word) as err:
            loaded.check(*args, str(path))
        assert str(path) in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(HinasError, match="not a readable cost table"):
        CostTable.load(tmp_path / "bad.json")


def test_fitting_keeps_the_edges_and_meets_the_budget():
    space, task = SPACES[0], TaskConfig()
    table = measure_table(space, task, 1.0, SIZE, "macs")
    genotype = sample_arch(space, task, np.random.default_rng(3)).genotype
    genotype.alpha = np.full((3, 5, len(space.ops)), 1 / len(space.ops)).tolist()
    genotype.beta = path_beta(genotype.path, 3).numpy().tolist()
    limit = (table.cheapest(space) + table.predict(genotype)) / 2
    fitted = Budget(limit, table, 1.0).fit(genotype, "correct")
    assert table.predict(fitted) <= limit < table.predict(genotype)
    inputs = [[[inp for inp, _ in node] for node in cell] for cell in genotype.cells]
    assert [[[inp for inp, _ in node] for node in cell] for cell in fitted.cells] == inputs
    assert Genotype.from_dict(json.loads(json.dumps(fitted.to_dict()))).cells == fitted.cells


def test_filling_uses_the_budget_and_keeps_the_edges():
    space, task = SPACES[0], TaskConfig()
    table = measure_table(space, task, 1.0, SIZE, "macs")
    genotype = sample_arch(space, task, np.random.default_rng(3)).genotype
    genotype.cells = [[[(inp, "skip_connect") for inp, _ in node] for node in cell]
                      for cell in genotype.cells]
    weights = np.full((3, 5, len(space.ops)), 1 / len(space.ops))
    weights[:, :, space.ops.index("sep_conv_3x3")] += 0.01  # the α gain per cost goes first
    genotype.alpha = weights.tolist()
    costliest = dataclasses.replace(genotype, cells=[
        [[(inp, "conv_5x5" if "conv_5x5" in space.ops else space.ops[-1]) for inp, _ in node]
         for node in cell] for cell in genotype.cells])
    limit = (table.predict(genotype) + table.predict(costliest)) / 2
    filled = Budget(limit, table, 1.0, 0.9).fit(genotype, "correct")
    assert 0.9 * limit <= table.predict(filled) <= limit
    assert filled.path == genotype.path
    inputs = [[[inp for inp, _ in node] for node in cell] for cell in genotype.cells]
    assert [[[inp for inp, _ in node] for node in cell] for cell in filled.cells] == inputs
    assert "sep_conv_3x3" in {op for cell in filled.cells for node in cell for _, op in node}
    assert Budget(limit, table, 1.0, 0.0).fit(genotype, "correct").cells == genotype.cells


def test_budget_settings_are_checked():
    with pytest.raises(HinasError, match="search.max_macs must be"):
        resolve("denoise", "tiny", overrides=["search.max_macs=-1"])
    with pytest.raises(HinasError, match=r"search.budget_fill must be in \[0, 1\]"):
        resolve("denoise", "tiny", overrides=["search.budget_fill=1.5"])
    with pytest.raises(HinasError, match="one budget"):
        resolve("denoise", "tiny", overrides=["search.max_macs=1", "search.max_latency=5"])
    assert search_budget(resolve("denoise", "tiny")) is None


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return write_photos(tmp_path_factory.mktemp("budget") / "photos", size=48)


@pytest.mark.parametrize("strategy", STRATEGIES.names())
def test_search_under_a_macs_budget_fits_it(photos, tmp_path, capsys, strategy):
    out = tmp_path / "search"
    assert main(["search", "--sigma", "25", "--data", str(photos), "--out", str(out),
                 "--preset", "tiny", "--quiet", "--strategy", strategy, "--max-macs", "0.1",
                 "--set", "search.samples=3"]) == 0
    cost = Genotype.load(out / "genotype.json").meta["cost"]
    assert cost["kind"] == "macs" and cost["budget"] == 0.1
    assert cost["measured"] == pytest.approx(cost["predicted"], rel=1e-6)
    assert cost["measured"] <= 0.1
    capsys.readouterr()
    assert main(["arch", "show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "searched under a budget: " in shown and "within a budget of 0.1" in shown
    assert "latency at 481x321" in shown


def test_the_params_search_keeps_the_most_parameters_of_its_draws_and_trains_nothing(
        photos, tmp_path):
    out = tmp_path / "search"
    assert main(["search", "--sigma", "25", "--data", str(photos), "--out", str(out),
                 "--preset", "tiny", "--quiet", "--strategy", "params", "--max-macs", "0.1",
                 "--set", "search.samples=6", "--set", "search.budget_fill=0"]) == 0
    genotype = Genotype.load(out / "genotype.json")
    meta = genotype.meta
    assert meta["strategy"] == "params" and meta["epochs"] == 0 and meta["samples"] == 6
    assert meta["draw_params"] == count_params(DerivedNet(genotype, 1.0))
    cfg = resolve("denoise", "tiny", overrides=["search.max_macs=0.1"])
    budget, rng = search_budget(cfg), np.random.default_rng([cfg.seed, 17])
    drawn = [g for g in (sample_arch(cfg.space, cfg.task, rng).genotype for _ in range(200))
             if budget.fits(g)][:6]
    assert meta["draw_params"] == max(count_params(DerivedNet(g, 1.0)) for g in drawn)
    assert not (out / "metrics.jsonl").exists() or not (out / "metrics.jsonl").read_text()
    assert not (out / "best.pt").exists()


def test_the_params_search_without_a_budget_is_refused_in_one_line(photos, tmp_path, capsys):
    assert main(["search", "--sigma", "25", "--data", str(photos), "--out",
                 str(tmp_path / "s"), "--preset", "tiny", "--strategy", "params"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs a cost budget" in err[0]


def test_an_unreachable_budget_is_refused_in_one_line(photos, tmp_path, capsys):
    assert main(["search", "--sigma", "25", "--data", str(photos), "--out",
                 str(tmp_path / "s"), "--preset", "tiny", "--max-macs", "0.001"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "below the cheapest network of the space" in err[0]
    assert "G MACs" in err[0]


def test_search_under_a_latency_budget_records_its_table_and_costs(photos, tmp_path):
    """No shipped table fits this space and machine: one is measured, and the genotype records
    the predicted and measured latency (a generous budget: timings vary with the load)."""
    out = tmp_path / "search"
    assert main(["search", "--sigma", "25", "--data", str(photos), "--out", str(out),
                 "--preset", "tiny", "--quiet", "--max-latency", "100000"]) == 0
    cost = Genotype.load(out / "genotype.json").meta["cost"]
    assert cost["kind"] == "latency" and cost["unit"] == "ms" and "thread" in cost["machine"]
    assert cost["predicted"] > 0 and cost["measured"] > 0


def test_arch_select_fits_the_budget_it_is_given(photos, tmp_path):
    out, chosen = tmp_path / "search", tmp_path / "g.json"
    assert main(["search", "--sigma", "25", "--data", str(photos), "--out", str(out),
                 "--preset", "tiny", "--quiet"]) == 0
    cfg = resolve("denoise", "tiny", overrides=["search.max_macs=1"])
    cheapest = search_budget(cfg).table.cheapest(cfg.space)
    assert main(["arch", "select", str(out), "-o", str(chosen), "--quiet", "--set",
                 f"search.max_macs={cheapest * 1.0001}"]) == 0
    cost = Genotype.load(chosen).meta["cost"]
    assert cost["budget"] == pytest.approx(cheapest * 1.0001)
    assert cost["measured"] <= cost["budget"]
