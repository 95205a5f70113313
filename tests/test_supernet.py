"""Supernet: shapes for every task, gradients to α/β, the two modes (Eq. 5 / 6), checkpointing."""


import numpy as np
import pytest
import torch

from hinas.config import SpaceConfig, TaskConfig, resolve
from hinas.jobs.arch import random_genotype
from hinas.runtime.strategies import arch_optimizer, weight_optimizer
from hinas.space.supernet import (
    Supernet,
    beta_mask,
    count_paths,
    layer_levels,
    sample_arch,
    sample_path,
    second_input,
    sources,
)

TASKS = [TaskConfig("denoise", channels=1), TaskConfig("denoise", channels=3),
         TaskConfig("sr", scale=2, channels=3), TaskConfig("sr", scale=3, channels=3),
         TaskConfig("sr", scale=4, channels=1)]


def small_space(**kw) -> SpaceConfig:
    return SpaceConfig(**{"width": 2, "nodes": 2, "layers": 3, **kw})


@pytest.mark.parametrize("task", TASKS, ids=lambda t: f"{t.name}{t.out_scale}c{t.channels}")
@pytest.mark.parametrize("mode", [{}, {"cell_sharing": False}, {"checkpoint": True}],
                         ids=["eq5", "eq6", "ckpt"])
def test_output_shape_on_odd_sizes(task, mode):
    net = Supernet(small_space(**mode), task)
    x = torch.rand(2, task.channels, 37, 53)
    y = net(x)
    s = task.out_scale
    assert y.shape == (2, task.channels, 37 * s, 53 * s)
    y.mean().backward()
    assert net.alpha.grad is not None and net.alpha.grad.abs().sum() > 0
    assert net.beta.grad is not None and net.beta.grad.abs().sum() > 0


def test_transitions_follow_the_paper():
    assert layer_levels(0) == (0, 1) and layer_levels(1) == (0, 1, 2)
    assert [k for k, _ in sources(0, 0)] == [0] and [k for k, _ in sources(0, 1)] == [0]
    assert [k for k, _ in sources(1, 2)] == [1]  # layer 0 has no level 2
    assert [k for k, _ in sources(2, 1)] == [0, 1, 2]
    assert second_input(0, 1) == (-2, 0) and second_input(1, 2) == (-1, 0)
    assert second_input(2, 2) == (-1, 0) and second_input(3, 2) == (1, 2)
    mask = beta_mask(3)
    assert mask[0].sum() == 2 and mask[0, 0, 0].item() is False  # stem: same / up only
    assert mask[2, 0, 0].item() is False and mask[2, 2, 2].item() is False


def test_beta_softmax_per_source_over_existing_moves():
    net = Supernet(small_space(arch_init="randn"), TaskConfig())
    probs = net.beta_weights().detach()
    mask = beta_mask(3)
    for layer in range(3):
        for k in layer_levels(layer - 1):
            assert probs[layer, k].sum().item() == pytest.approx(1.0, abs=1e-6)
            assert (probs[layer, k][~mask[layer, k]] == 0).all()


def _copy_weights(src: Supernet, dst: Supernet) -> None:
    dst.load_state_dict(src.state_dict())


def test_one_hot_beta_modes_agree_where_one_path_enters():
    """With one-hot β, Eq. 5 and Eq. 6 compute the same cell output wherever exactly one active
    path enters (here the chain stem → (0,1) → (1,1) → (2,1)). They differ where no path enters:
    Eq. 6 sums nothing (exactly 0) while Eq. 5 still runs the cell on a zero input; and with soft
    β, where C(a + b) != C(a) + C(b) because the cell is non-linear."""
    torch.manual_seed(0)
    task = TaskConfig()
    eq5 = Supernet(small_space(), task)
    eq6 = Supernet(small_space(cell_sharing=False), task)
    _copy_weights(eq5, eq6)
    x = torch.rand(2, 1, 24, 24)
    with torch.no_grad():
        soft5, soft6 = eq5.features(x), eq6.features(x)
        beta = torch.full((3, 3, 3), -1e9)
        beta[0, 0, 2] = 0  # stem -> level 1 only; level 0 of layer 0 receives nothing
        beta[1:, :, 1] = 0  # afterwards every level keeps its level
        eq5.beta.copy_(beta)
        eq6.beta.copy_(beta)
        h5, h6 = eq5.features(x), eq6.features(x)
    for key in [(0, 1), (1, 1), (2, 1)]:
        torch.testing.assert_close(h5[key], h6[key], rtol=1e-5, atol=1e-6)
    assert h6[(0, 0)].abs().max() == 0 and h5[(0, 0)].abs().max() > 0
    assert not torch.allclose(soft5[(2, 1)], soft6[(2, 1)], atol=1e-3)


def test_checkpointing_gives_the_same_gradients():
    torch.manual_seed(1)
    plain = Supernet(small_space(arch_init="randn"), TaskConfig())
    ckpt = Supernet(small_space(arch_init="randn", checkpoint=True), TaskConfig())
    _copy_weights(plain, ckpt)
    x = torch.rand(2, 1, 20, 20)
    for net in (plain, ckpt):
        net(x).square().mean().backward()
    for (name, p), q in zip(plain.named_parameters(), ckpt.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_weight_optimizer_never_sees_alpha_beta():
    net = Supernet(small_space(), TaskConfig())
    s = resolve("denoise").search
    w_opt, a_opt = weight_optimizer(net, s), arch_optimizer(net, s)
    w_ids = {id(p) for g in w_opt.param_groups for p in g["params"]}
    a_ids = {id(p) for g in a_opt.param_groups for p in g["params"]}
    assert id(net.alpha) not in w_ids and id(net.beta) not in w_ids
    assert a_ids == {id(net.alpha), id(net.beta)}
    assert len(w_ids) + len(a_ids) == len(list(net.parameters()))


def test_lwas_switch_shapes_alpha():
    assert Supernet(small_space(), TaskConfig()).alpha.shape == (3, 5, 7)
    assert Supernet(small_space(lwas=False), TaskConfig()).alpha.shape == (1, 5, 7)


def test_sampled_architecture_runs_only_its_ops():
    space, task = small_space(), TaskConfig()
    net = Supernet(space, task)
    arch = sample_arch(space, task, np.random.default_rng(0))
    assert all(len(node) == 2 for cell in arch.genotype.cells for node in cell)
    assert int(arch.alpha.sum()) == space.layers * space.nodes * 2
    y = net(torch.rand(1, 1, 16, 16), arch)
    y.mean().backward()
    used = [net.cells[f"{layer}_{level}"] for layer in range(3) for level in layer_levels(layer)]
    touched = sum(p.grad is not None for c in used for p in c.parameters())
    assert 0 < touched < sum(1 for c in used for _ in c.parameters())


def test_cell_work_ratio_matches_the_documented_value():
    from hinas.jobs.search_probes import cell_work_ratio

    assert cell_work_ratio(3, [10, 20, 40]) == pytest.approx(1.71, abs=0.005)


def test_width_paths_are_sampled_uniformly_over_valid_paths():
    counts = count_paths(3)
    assert counts[0][0] == 12  # the 12 valid paths of a 3-layer space
    rng = np.random.default_rng(0)
    draws = [tuple(sample_path(3, rng)) for _ in range(6000)]
    freq = np.array([draws.count(p) for p in set(draws)])
    assert len(freq) == 12 and freq.min() > 400 and freq.max() < 600  # 500 each expected
    # a random walk would give (0, 0, 0) 1/2·1/3·1/2... — here the edge paths are as likely


def test_random_genotype_matches_a_parameter_count_or_says_it_cannot():
    from hinas.errors import HinasError
    from hinas.measures.complexity import count_params
    from hinas.models.architectures import DerivedNet
    space, task = SpaceConfig(width=4, nodes=3, layers=3), TaskConfig()
    rng = np.random.default_rng(1)
    free = random_genotype(space, task, rng)
    target = count_params(DerivedNet(free))
    matched = random_genotype(space, task, rng, target_params=target, tolerance=0.15)
    assert abs(matched.meta["params"] - target) <= 0.15 * target
    assert matched.meta["params"] == count_params(DerivedNet(matched))
    with pytest.raises(HinasError, match="no random genotype within ±15% of 10 parameters"):
        random_genotype(space, task, rng, target_params=10, tries=20)
