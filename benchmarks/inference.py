"""Inference cost of HiNAS-derived networks against DnCNN (denoising) and FSRCNN (SR).

For every network: parameters, MACs and the median latency of one forward pass
(`hinas.measures.complexity.measure_latency`: `--warmup` unmeasured calls, then `--repeats`) with
`torch.set_num_threads(--threads)`, on a 481×321 gray image (denoising) and a 128×128 RGB image
upscaled ×4 (SR), in several execution variants:

- `eager`: the module as trained (eval mode, no autograd);
- `folded`: its inference copy with every conv → BatchNorm folded into one convolution (what
  `hinas restore` and `hinas eval` run), timed with its parameters and MACs by
  `hinas.models.cost.model_cost`, the one cost of every benchmark; each network records
  `fold_speedup`, eager / folded latency;
- `channels_last`: the module and the input in channels-last memory format;
- `compile`: `torch.compile(module)` (compilation happens in the warm-up calls);
- `onnxruntime`: exported to an ONNX file and run by ONNX Runtime
  (`hinas.models.export.onnx_model`, the export `hinas export` writes and the runtime `hinas
  restore --backend onnxruntime` runs), where the `onnx` extra is installed.

A variant that fails is recorded as `"unavailable: <reason>"` instead of a time.

With `--bm3d-sigma S` (denoising), BM3D (`hinas eval --method bm3d`, the optional `bm3d` package)
runs on the same input at noise level S, measured the same way once; each
denoising network then records `bm3d_ratio`, BM3D's latency / its own (folded where measured,
else eager). Without the package BM3D is recorded as unavailable with a note.

Timings mean something only on a quiet machine: record the load beside them (`load_1min`, the
1-minute load average when the run started and ended).

`--genotype` (repeatable) gives searched genotypes; their task says where they go. Without one for
a task, a built-in genotype stands in (`BUILTIN_CELLS`, a plausible hand-written architecture at
the paper's search space — denoising L=3, N=4, W=10, path 0→1→1; SR L=2, N=3, W=8, path 0→1 —
not a searched one); the JSON records which. Derived nets use `--width-multiplier` (default 2, the
paper's). Prints (and with `--json` writes) JSON:

    {"benchmark": "inference", "config": {...}, "device": str, "notes": [...],
     "load_1min": [before, after], "bm3d": {"sigma", "input", "latency_s": s | str} | null,
     "models": {"denoise"|"sr": {name: {"arch", "genotype", "params", "macs",
                                       "input": [W, H, C], "latency_s": {variant: s | str},
                                       "fold_speedup": x | null, "bm3d_ratio": x | null}}}}

Example: python benchmarks/inference.py --genotype runs/search/genotype.json --json
benchmarks/results/inference.json; before and after folding beside BM3D, one thread:
python benchmarks/inference.py --genotype benchmarks/results/genotypes/denoise_sigma50_cpu.json
--tasks denoise --variants eager,folded --threads 1 --bm3d-sigma 25 --json
benchmarks/results/inference_folded.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if not __package__:  # run as a file, `python benchmarks/NAME.py`: the package made importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VARIANTS = ("eager", "folded", "channels_last", "compile", "onnxruntime")
BUILTIN_CELLS = {
    "denoise": ([0, 1, 1], [
        [(0, "conv_3x3"), (1, "sep_conv_3x3")], [(1, "dil_conv_3x3"), (2, "skip_connect")],
        [(2, "sep_conv_5x5"), (3, "conv_3x3")], [(1, "skip_connect"), (4, "dil_conv_5x5")]]),
    "sr": ([0, 1], [
        [(0, "conv_3x3"), (1, "sep_conv_3x3")], [(1, "dil_conv_3x3"), (2, "conv_3x3")],
        [(2, "skip_connect"), (3, "sep_conv_3x3")]]),
}
"""Per task: (width path, the cell used at every layer) of the built-in genotype."""
BUILTIN_SPACE = {"denoise": {"layers": 3, "nodes": 4, "width": 10},
                 "sr": {"layers": 2, "nodes": 3, "width": 8}}
BASELINE_ARCH = {"denoise": "dncnn", "sr": "fsrcnn"}


def builtin_genotype(task):
    """The built-in (hand-written, not searched) genotype for `task`, see `BUILTIN_CELLS`."""
    from hinas.config import resolve
    from hinas.space.genotype import Genotype

    path, cell = BUILTIN_CELLS[task.name]
    space = resolve(task.name, space=BUILTIN_SPACE[task.name]).space
    return Genotype(task, space, path, [cell] * space.layers, meta={"builtin": True})


def run_variant(model, x, variant: str, args: argparse.Namespace, folded: float | None
                ) -> float | str:
    """Median latency of `model` on `x` in `variant` (`folded`: the time measured with the
    network's cost), or "unavailable: <reason>"."""
    import torch

    from hinas.measures.complexity import measure_latency

    try:
        if variant == "eager":
            return measure_latency(model, x, args.repeats, args.warmup)
        if variant == "folded":
            return folded
        if variant == "channels_last":
            cl = torch.channels_last
            return measure_latency(model.to(memory_format=cl), x.to(memory_format=cl),
                                   args.repeats, args.warmup)
        if variant == "compile":
            return measure_latency(torch.compile(model), x, args.repeats, max(1, args.warmup))
        if variant == "onnxruntime":
            return onnxruntime_latency(model, x, args)
        raise ValueError(f"unknown variant {variant!r}")
    except Exception as err:  # a variant that cannot run is a result, not a failure
        return unavailable(err)
    finally:
        model.to(memory_format=torch.contiguous_format)


def unavailable(err: Exception) -> str:
    """`unavailable: <type>: <first line of the message>`, what a variant that fails records."""
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return f"unavailable: {type(err).__name__}: {reason[:300]}"


def bm3d_latency(x, sigma: float, repeats: int, warmup: int) -> float | str:
    """Median latency of BM3D (as `hinas eval --method bm3d` runs it) on the gray input `x` at
    noise level `sigma` (0–255 scale) over `repeats` calls after at most one of `warmup`, or
    "unavailable: <reason>" (no `bm3d` package)."""
    from hinas.config import TaskConfig
    from hinas.measures.complexity import measure_latency
    from hinas.models.classical import get_method

    try:
        bm3d, task = get_method("bm3d"), TaskConfig(sigma=[sigma])
        bm3d.check_available()
        image = x[0].cpu().numpy().transpose(1, 2, 0) * 255.0
        return measure_latency(lambda _: bm3d.restore(image, task), x, repeats, min(warmup, 1))
    except Exception as err:  # as a variant: a result, not a failure
        return unavailable(err)


def ratio(numerator: float | str | None, denominator: float | str | None) -> float | None:
    """`numerator / denominator` when both are measured times, else None."""
    if isinstance(numerator, float) and isinstance(denominator, float) and denominator > 0:
        return numerator / denominator
    return None


def onnxruntime_latency(model, x, args: argparse.Namespace) -> float:
    """Median latency of `model` exported to ONNX (as `hinas export` does) and run by ONNX
    Runtime on the CPU with `--threads` threads."""
    from hinas.measures.complexity import measure_latency
    from hinas.models.export import onnx_model

    return measure_latency(onnx_model(model, args.threads), x.cpu(), args.repeats, args.warmup)


def parse_size(text: str) -> tuple[int, int]:
    """`WxH` → (W, H)."""
    w, h = text.lower().split("x")
    return int(w), int(h)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--genotype", action="append", default=[], metavar="G.json",
                   help="searched genotype (repeatable; default: built-in ones)")
    p.add_argument("--tasks", default="denoise,sr", help="tasks to measure")
    p.add_argument("--width-multiplier", type=float, default=2.0)
    p.add_argument("--repeats", type=int, default=10, help="measured calls (median)")
    p.add_argument("--warmup", type=int, default=2, help="unmeasured first calls")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--denoise-size", type=parse_size, metavar="WxH",
                   help="input size (default: the task's cost size, 481x321)")
    p.add_argument("--sr-size", type=parse_size, metavar="WxH",
                   help="LR input size (default: the task's cost size, 128x128)")
    p.add_argument("--sr-scale", type=int, choices=(2, 3, 4), default=4)
    p.add_argument("--bm3d-sigma", type=float, metavar="S",
                   help="also time BM3D at this noise level on the denoising input")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", metavar="PATH", help="also write the JSON here")
    args = p.parse_args(argv)
    from hinas.config import TaskConfig

    args.denoise_size = args.denoise_size or TaskConfig(name="denoise").cost_size
    args.sr_size = args.sr_size or TaskConfig(name="sr").cost_size
    return args


def networks(args: argparse.Namespace) -> dict[str, list[tuple[str, object]]]:
    """Per task: (name, ModelSpec) of every network to measure."""
    from hinas.config import TaskConfig
    from hinas.models.folder import ModelSpec
    from hinas.space.genotype import Genotype
    tasks = args.tasks.split(",")
    given: dict[str, list[tuple[str, Genotype]]] = {t: [] for t in tasks}
    for path in args.genotype:
        genotype = Genotype.load(path)
        if genotype.task.name in given:
            given[genotype.task.name].append((Path(path).stem, genotype))
    specs = {}
    for name in tasks:
        task = (TaskConfig(name="denoise", channels=1) if name == "denoise"
                else TaskConfig(name="sr", scale=args.sr_scale, channels=3))
        found = given[name] or [("built-in", builtin_genotype(task))]
        specs[name] = [
            ("hinas" if len(found) == 1 else f"hinas:{stem}",
             ModelSpec("hinas", g.task, {"width_multiplier": args.width_multiplier}, g,
                       {"genotype": stem}))
            for stem, g in found]
        specs[name].append((BASELINE_ARCH[name], ModelSpec(BASELINE_ARCH[name], task)))
    return specs


def run(args: argparse.Namespace) -> dict:
    """Measure every network in every variant; return the summary."""
    import torch

    from benchmarks.harness import device, load_1min
    from hinas.models.cost import model_cost

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    variants = args.variants.split(",")
    models: dict[str, dict] = {}
    notes = []
    load_before = load_1min()
    bm3d = None
    for task_name, specs in networks(args).items():
        w, h = args.denoise_size if task_name == "denoise" else args.sr_size
        models[task_name] = {}
        for name, spec in specs:
            model = spec.build().to(args.device).eval()
            c = spec.task.channels
            x = torch.rand(1, c, h, w, device=args.device)
            genotype = spec.meta.get("genotype")
            if genotype == "built-in":
                notes.append(f"{task_name}/{name}: built-in genotype (not searched)")
            if task_name == "denoise" and args.bm3d_sigma is not None and bm3d is None:
                bm3d = {"sigma": args.bm3d_sigma, "input": [w, h, c],
                        "latency_s": bm3d_latency(x, args.bm3d_sigma, args.repeats,
                                                  args.warmup)}
                if isinstance(bm3d["latency_s"], str):
                    notes.append(f"bm3d not timed ({bm3d['latency_s']}); "
                                 f"pip install 'hinas[bm3d]'")
            cost = model_cost(model, spec.task, (w, h), args.repeats if "folded" in variants
                              else 0, args.warmup)
            times = {v: run_variant(model, x, v, args, cost.latency_s) for v in variants}
            fastest = times.get("folded", times.get("eager"))
            models[task_name][name] = {
                "arch": spec.arch, "genotype": genotype, "params": cost.params,
                "macs": cost.macs, "input": [w, h, c], "latency_s": times,
                "fold_speedup": ratio(times.get("eager"), times.get("folded")),
                "bm3d_ratio": ratio(bm3d and bm3d["latency_s"], fastest)
                if task_name == "denoise" else None}
    config = {k: v for k, v in vars(args).items() if k != "json"}
    return {"benchmark": "inference", "config": config, "notes": notes,
            "device": device(args.device),
            "load_1min": [load_before, load_1min()], "bm3d": bm3d,
            "models": models}


def markdown(summary: dict) -> str:
    """The networks of an inference summary as a markdown table (latency in ms)."""
    variants = summary["config"]["variants"].split(",")
    lines = [f"Inference on {summary['device']} (median of {summary['config']['repeats']})",
             "",
             "| task | network | input | params (M) | MACs (G) | "
             + " | ".join(f"{v} (ms)" for v in variants) + " |",
             "|---|---|---|---:|---:|" + "---:|" * len(variants)]
    for task, entries in summary["models"].items():
        for name, m in entries.items():
            w, h, c = m["input"]
            times = [f"{t * 1e3:.1f}" if isinstance(t, (int, float)) else "n/a"
                     for t in (m["latency_s"][v] for v in variants)]
            lines.append(f"| {task} | {name} | {w}×{h}×{c} | {m['params'] / 1e6:.4f} | "
                         f"{m['macs'] / 1e9:.2f} | " + " | ".join(times) + " |")
    bm3d = summary.get("bm3d")
    if bm3d and isinstance(bm3d["latency_s"], float):
        w, h, c = bm3d["input"]
        lines.append(f"\nBM3D (σ={bm3d['sigma']:g}) on the same {w}×{h}×{c} input: "
                     f"{bm3d['latency_s'] * 1e3:.1f} ms")
    for task, entries in summary["models"].items():
        for name, m in entries.items():
            said = [f"{label} {m[key]:.2f}" for key, label in
                    (("fold_speedup", "eager / folded"), ("bm3d_ratio", f"BM3D / {name}"))
                    if m.get(key) is not None]
            if said:
                lines.append(f"\n{task}/{name}: latency ratio " + ", ".join(said))
    if summary.get("load_1min"):
        lines.append("\nmachine load (1-min average) while measured: "
                     + "–".join(f"{v:g}" for v in summary["load_1min"]))
    reasons = sorted({f"{v}: {t}" for e in summary["models"].values() for m in e.values()
                      for v, t in m["latency_s"].items() if isinstance(t, str)})
    lines += [f"\nnote: {n}" for n in [*summary["notes"], *reasons]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print the JSON and write it where asked."""
    args = parse_args(argv)
    from hinas.errors import HinasError

    try:
        summary = run(args)
    except HinasError as err:
        raise SystemExit(f"inference: error: {err}") from None
    from benchmarks.harness import command_line, emit

    summary["command"] = command_line(__file__, argv)
    emit(summary, args.json)
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
