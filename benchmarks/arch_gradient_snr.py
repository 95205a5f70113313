"""How noisy is the architecture gradient? Signal-to-noise ratio of ∂L/∂α and ∂L/∂β of a search's
supernet, and the number of architecture steps a decision needs.

Loads a search run folder's checkpoint (`best.pt`, else `last.pt`) and its config, draws
`--batches` Train-A batches exactly as the search does, and records the gradient of the search loss
with respect to α and β on each (weights frozen, as in an A-step). Per entry, SNR = |mean| / std
over batches. With per-step SNR s, the summed gradient of n steps is s·√n standard deviations
from zero, so a choice that should be made at z = 3 needs about 9 / s² A-steps; the JSON reports
that for the median entry and for the strongest decile. Averaging `--group` batches per estimate
shows what a batch that many times larger would give.

Example: python benchmarks/arch_gradient_snr.py --run RUNDIR --data ../shared/data/BSDS500
--batches 64 --json benchmarks/results/arch_gradient_snr.json
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True, metavar="RUNDIR", help="a search run folder")
    p.add_argument("--data", nargs="+", required=True, metavar="DIR",
                   help="the search's training folders")
    p.add_argument("--batches", type=int, default=64, help="A-batches to sample")
    p.add_argument("--group", type=int, default=4, help="batches averaged per larger batch")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", metavar="PATH", help="also write the JSON here")
    return p.parse_args(argv)


def snr_summary(grads, a_steps: int) -> dict:
    """Median and top-decile SNR of per-batch gradients [batches, entries] and the A-steps a
    z = 3 decision needs at each; `a_steps` is what the search made."""
    import numpy as np

    mean, std = grads.mean(axis=0), grads.std(axis=0, ddof=1)
    snr = np.abs(mean) / np.maximum(std, 1e-20)
    median, top = float(np.median(snr)), float(np.percentile(snr, 90))
    return {"entries": int(snr.size), "snr_median": round(median, 4),
            "snr_p90": round(top, 4),
            "a_steps_for_z3_median": round(9 / median ** 2) if median > 0 else None,
            "a_steps_for_z3_p90": round(9 / top ** 2) if top > 0 else None,
            "z_reached_by_search_median": round(median * a_steps ** 0.5, 2),
            "z_reached_by_search_p90": round(top * a_steps ** 0.5, 2)}


def main(argv: list[str] | None = None) -> dict:
    """Measure and print the JSON."""
    args = parse_args(argv)
    import numpy as np
    import torch

    from hinas.config import from_dict, load_yaml
    from hinas.jobs.search import arch_budget, prepare_data
    from hinas.measures.losses import build_loss
    from hinas.runtime.engine import frozen
    from hinas.runtime.execution import describe_device
    from hinas.runtime.runs import load_checkpoint
    from hinas.space.supernet import Supernet
    from jsonout import command_line, emit

    torch.set_num_threads(args.threads)
    run = Path(args.run)
    values = load_yaml(run / "config.yaml")
    values.get("data", {}).pop("path", None)
    cfg = from_dict(values)
    data = prepare_data(cfg, args.data)
    net = Supernet(cfg.space, cfg.task)
    checkpoint = run / "best.pt" if (run / "best.pt").exists() else run / "last.pt"
    net.load_state_dict(load_checkpoint(checkpoint)["model"])
    net.train()
    loss_fn = build_loss(cfg.search.loss, cfg.search.ssim_weight)
    data.train_a.set_epoch(10_000)
    loader = torch.utils.data.DataLoader(data.train_a, batch_size=cfg.search.batch_size)
    alpha, beta = [], []
    mask = net.beta_mask.numpy()
    for i, (lq, gt) in enumerate(loader):
        if i == args.batches:
            break
        net.zero_grad(set_to_none=True)
        with frozen(net.weight_parameters()):
            loss_fn(net(lq), gt).backward()
        alpha.append(net.alpha.grad.numpy().ravel().copy())
        beta.append(net.beta.grad.numpy()[mask].copy())
    alpha, beta = np.array(alpha), np.array(beta)
    a_steps = arch_budget(cfg, len(data.split["w"]))["a_steps"]
    usable = len(alpha) // args.group * args.group
    summary = {
        "benchmark": "arch_gradient_snr", "run": run.name, "checkpoint": checkpoint.name,
        "batches": len(alpha), "batch_size": cfg.search.batch_size, "crop": cfg.search.crop,
        "search_a_steps": a_steps,
        "alpha": snr_summary(alpha, a_steps), "beta": snr_summary(beta, a_steps),
        f"alpha_batch_x{args.group}": snr_summary(
            alpha[:usable].reshape(-1, args.group, alpha.shape[1]).mean(axis=1), a_steps),
        "device": describe_device("cpu"), "load_1min": round(os.getloadavg()[0], 2),
        "command": command_line(__file__, argv)}
    emit(summary, args.json)
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
