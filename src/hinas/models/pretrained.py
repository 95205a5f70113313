"""Pretrained models that ship inside the package: restore an image right after install.

Each model is a trained-model folder (see :mod:`hinas.models.folder`) under `hinas/weights/<name>/`:
`model.json`, `genotype.json`, `model.safetensors`, plus

- `pretrained.json`: what the model is and how it was made and measured — task, architecture,
  the search that found its genotype, the training command and time, parameters, MACs and CPU
  latency at a stated input size, PSNR/SSIM on each test set, the headline result and the
  published anchor it is read against, and the SHA-256 of the weights file (a corrupted or
  replaced file is refused);
- `card.md`: the model card, generated from `pretrained.json` by :func:`model_card`.

`hinas models` prints :func:`models_table`; `--pretrained NAME` on `hinas restore` and
`hinas eval` and :func:`load_pretrained` use :func:`pretrained_folder`. Packaging a trained run
(`benchmarks/pretrained.py` measures it) is :func:`write_pretrained`: the model files
(:func:`install_run`), `pretrained.json` (its schema: :func:`pretrained_record`) and the card.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hinas.config import TaskConfig
from hinas.errors import HinasError
from hinas.io import atomic_write_text
from hinas.measures.metrics import Convention
from hinas.models.cost import ModelCost
from hinas.models.folder import WEIGHTS_FILE, ModelSpec, load_model
from hinas.tasks import level_label

INFO_FILE = "pretrained.json"
CARD_FILE = "card.md"
CURVES_FILE = "curves.png"
"""The training run's loss and validation plot, shipped beside the card."""
SPEC_META = ("iterations", "best_iter", "best_val_psnr", "params")
"""What a shipped model.json keeps of its run's record."""
REFERENCES = {
    "Set12 σ=15": "BM3D 32.37, DnCNN-B 32.68 (published)",
    "Set12 σ=25": "BM3D 29.97, DnCNN-B 30.36 (published)",
    "Set12 σ=50": "BM3D 26.72 published, 26.77 measured here; DnCNN-B 27.21 (published)",
    "Set5 ×2": "bicubic 33.66, FSRCNN 37.05 (published)",
    "Set14 ×2": "bicubic 30.24, FSRCNN 32.66 (published)",
    "Set5 ×4": "bicubic 28.42, FSRCNN 30.71 (published)",
    "Set14 ×4": "bicubic 26.00, FSRCNN 27.59 (published)",
    "Set12 q=10": "on LIVE1 (not shipped here): JPEG 27.77, ARCNN 28.98 (published)",
    "Set12 q=20": "on LIVE1 (not shipped here): JPEG 30.07, ARCNN 31.29 (published)",
    "Set12 q=30": "on LIVE1 (not shipped here): JPEG 31.41, ARCNN 32.69 (published)",
}
"""Published figures (DnCNN paper Table 3 for Set12; paper Table 12 and FSRCNN for SR; ARCNN's
LIVE1 table for JPEG, whose gain over the input is the yardstick) and our own measurements,
printed beside each result in the card, by the result's label (:func:`result_label`)."""
HEADLINES = {"Set12 σ=50": ("BM3D", 26.72), "Set5 ×2": ("FSRCNN", 37.05),
             "Set5 ×4": ("FSRCNN", 30.71), "Set12 q=10": ("JPEG input", None)}
"""The result `hinas models` shows for a model (the first of its results named here) and the
anchor it is read against: a published figure of `REFERENCES`, or None for the baseline
measured beside it."""


@dataclass(frozen=True)
class Provenance:
    """How a packaged model was made, in the words of its card: what it is, which search found
    its genotype, the training command as run, its data, recipe and machine, and its limits."""

    description: str
    genotype_source: str
    command: str
    train_data: str
    recipe: str
    machine: str
    limits: str


def weights_root() -> Path:
    """The folder of the shipped models inside the installed package."""
    return Path(str(resources.files("hinas").joinpath("weights")))


def list_pretrained() -> list[str]:
    """Names of the shipped models, sorted."""
    root = weights_root()
    return sorted(p.parent.name for p in root.glob(f"*/{INFO_FILE}")) if root.is_dir() else []


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pretrained_info(name: str) -> dict[str, Any]:
    """The `pretrained.json` of model `name` (HinasError listing the available names if there
    is no such model)."""
    path = weights_root() / name / INFO_FILE
    if name not in list_pretrained():
        raise HinasError(f"unknown pretrained model {name!r}; available: "
                         f"{', '.join(list_pretrained()) or 'none'}")
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise HinasError(f"{path}: unreadable model metadata ({err})") from None


def pretrained_folder(name: str) -> Path:
    """The model folder of shipped model `name`, after checking its weights against the
    checksum in its metadata."""
    info = pretrained_info(name)
    folder = weights_root() / name
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise HinasError(f"{weights}: missing weights of pretrained model {name!r}; reinstall "
                         f"hinas")
    actual = sha256_file(weights)
    if actual != info["sha256"]:
        raise HinasError(f"{weights}: corrupted weights (SHA-256 {actual[:12]}… ≠ "
                         f"{info['sha256'][:12]}… in {INFO_FILE}); reinstall hinas")
    return folder


def model_folder(model: str | Path | None, pretrained: str | None = None
                 ) -> tuple[str | Path, str]:
    """The model folder named by `--model` (a path, or `pretrained:NAME`) or `--pretrained
    NAME`, checked if shipped, and how to call it in messages; HinasError unless exactly one is
    given."""
    if (model is None) == (pretrained is None):
        raise HinasError("give either --model RUNDIR or --pretrained NAME (see `hinas models`)")
    if pretrained is None and str(model).startswith("pretrained:"):
        pretrained = str(model).removeprefix("pretrained:")
    if pretrained is not None:
        return pretrained_folder(pretrained), f"pretrained model {pretrained}"
    return model, str(model)


def load_pretrained(name: str, device: str | torch.device = "cpu", fold: bool = False
                    ) -> nn.Module:
    """The shipped model `name` (see `hinas models`), weights checked and loaded, in eval mode
    on `device` (with `fold`, its BatchNorm-folded inference copy, see
    :func:`hinas.models.folder.load_model`)."""
    return load_model(pretrained_folder(name), device, fold)


def install_run(run: str | Path, dest: str | Path) -> ModelSpec:
    """Copy the trained model of run folder `run` into `dest` as a shipped model folder:
    model.json keeping `SPEC_META` of the run's record, the genotype without its data split
    (the search machine's file lists) and the weights. Returns the run's spec, record whole."""
    run, dest = Path(run), Path(dest)
    spec = ModelSpec.load(run)
    dest.mkdir(parents=True, exist_ok=True)
    shipped = dataclasses.replace(spec, meta={k: spec.meta[k] for k in SPEC_META})
    if spec.genotype is not None:
        shipped.genotype = dataclasses.replace(spec.genotype, meta={
            k: v for k, v in spec.genotype.meta.items() if k != "data_split"})
    shipped.save(dest)
    (dest / WEIGHTS_FILE).write_bytes((run / WEIGHTS_FILE).read_bytes())
    return spec


def validation_curve(run: str | Path) -> list[dict[str, float]]:
    """Validation PSNR against wall-clock training minutes, from the run's metrics.jsonl (the
    minutes sum the logged step times up to each validation)."""
    minutes, curve = 0.0, []
    for line in (Path(run) / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        minutes += record.get("seconds", 0.0) / 60
        if "val_psnr" in record:
            curve.append({"iter": record["iter"], "minutes": round(minutes, 2),
                          "val_psnr": record["val_psnr"]})
    return curve


def pretrained_record(name: str, spec: ModelSpec, folder: str | Path, made: Provenance,
                      results: list[dict[str, Any]], cost: ModelCost, latency_device: str,
                      baseline_latency_s: float | None = None, with_baseline: bool = False
                      ) -> dict[str, Any]:
    """The `pretrained.json` of model `name` trained as `spec` (its run's record whole) and
    installed in `folder` (:func:`install_run`): the measured `results` (each `{"test", level
    fields, "psnr", "ssim", "seconds_per_image", "images"}`, with `baseline_psnr` /
    `baseline_ssim` when the task's baseline was scored beside it, `with_baseline`) given
    their `REFERENCES` and the headline of `HEADLINES`, the `cost` at the task's cost size on
    `latency_device` (in words) and the baseline's latency on the same image."""
    task, run = spec.task, spec.meta
    results = [{**{k: v for k, v in r.items() if not k.startswith("baseline_")},
                "reference": REFERENCES.get(result_label(r)),
                **{k: v for k, v in r.items() if k.startswith("baseline_")}} for r in results]
    method, label = task.baseline or (None, None)
    headline_entry = None
    for r in results:
        anchor, anchor_psnr = HEADLINES.get(result_label(r), (None, None))
        if anchor and (anchor_psnr is not None or with_baseline):
            headline_entry = {"test": r["test"],
                              **{k: r[k] for k in task.result_fields() if k in r},
                              "anchor": anchor,
                              "anchor_psnr": r["baseline_psnr"] if anchor_psnr is None
                              else anchor_psnr,
                              "anchor_source": "measured" if anchor_psnr is None
                              else "published"}
            break
    return {
        "name": name, "description": made.description, "task": dataclasses.asdict(task),
        "arch": spec.arch, "genotype_source": made.genotype_source,
        "sha256": sha256_file(Path(folder) / WEIGHTS_FILE), "params": cost.params,
        "macs": cost.macs, "cost_input": list(cost.size), "latency_s": cost.latency_s,
        **({"baseline_latency_s": baseline_latency_s} if baseline_latency_s is not None
           else {}),
        "latency_device": latency_device,
        "training": {"command": made.command, "data": made.train_data, "recipe": made.recipe,
                     "iterations": run["iterations"], "seconds": run["train_seconds"],
                     "cpu_seconds": run.get("train_cpu_seconds", run["train_seconds"]),
                     "machine": made.machine},
        "convention": Convention.for_task(task.name, task.out_scale).describe(),
        "results": results, **({"headline": headline_entry} if headline_entry else {}),
        **({"baseline": {"method": method, "label": label}} if with_baseline else {}),
        "limits": made.limits,
    }


def write_pretrained(run: str | Path, dest: str | Path, name: str, made: Provenance,
                     results: list[dict[str, Any]], cost: ModelCost, latency_device: str,
                     baseline_latency_s: float | None = None, with_baseline: bool = False
                     ) -> dict[str, Any]:
    """Package the trained model of run folder `run` as shipped model `name` in `dest`: its
    files (:func:`install_run`), its `pretrained.json` (:func:`pretrained_record` of the
    measured `results` and `cost`, with the run's validation curve and plot) and its model
    card. Returns the `pretrained.json` content."""
    dest, run = Path(dest), Path(run)
    spec = install_run(run, dest)
    info = {**pretrained_record(name, spec, dest, made, results, cost, latency_device,
                                baseline_latency_s, with_baseline),
            "curve": validation_curve(run)}
    if (run / CURVES_FILE).exists():
        (dest / CURVES_FILE).write_bytes((run / CURVES_FILE).read_bytes())
        info["curve_plot"] = CURVES_FILE
    atomic_write_text(dest / INFO_FILE, json.dumps(info, indent=1) + "\n")
    atomic_write_text(dest / CARD_FILE, model_card(info))
    return info


def describe_task(task: dict[str, Any]) -> str:
    """`gray denoising σ 0–55 (blind)`, `RGB super-resolution ×4`, `gray JPEG artefact removal,
    quality 10–40 (blind)`: a task (its fields, as `pretrained.json` holds them) in words."""
    return TaskConfig(**task).in_words()


def result_label(result: dict[str, Any]) -> str:
    """`Set12 σ=25`, `Set5 ×4` or `Set12 q=10`: the test of one measured result."""
    return " ".join(filter(None, [result["test"], level_label(result)]))


def headline(info: dict[str, Any]) -> str:
    """`Set12 σ=50: 25.61 dB (BM3D 26.72 published)`: the model's headline result (the one its
    `headline` entry names) beside its anchor; empty when the model has no headline."""
    head = info.get("headline")
    if head is None:
        return ""
    label = result_label(head)
    psnr = next(r["psnr"] for r in info["results"] if result_label(r) == label)
    return (f"{label}: {psnr:.2f} dB ({head['anchor']} {head['anchor_psnr']:.2f} "
            f"{head['anchor_source']})")


def models_table() -> str:
    """One block per shipped model: task and headline result against its anchor, size, cost,
    scores, training time and command."""
    names = list_pretrained()
    if not names:
        return "no pretrained models in this installation"
    blocks = []
    for name in names:
        info = pretrained_info(name)
        w, h = info["cost_input"]
        scores = ", ".join(f"{result_label(r)} {r['psnr']:.2f}/{r['ssim']:.4f}"
                           for r in info["results"])
        t = info["training"]
        head = headline(info)
        blocks.append("\n".join([
            f"{name}: {describe_task(info['task'])} ({info['arch']})"
            + (f"; {head}" if head else ""),
            f"  params {info['params']:,}, MACs {info['macs'] / 1e9:.3f} G and CPU latency "
            f"{info['latency_s'] * 1e3:.0f} ms at {w}x{h} ({info['latency_device']})",
            f"  PSNR/SSIM: {scores}",
            f"  trained {t['iterations']} iterations in {t['seconds'] / 60:.0f} min "
            f"({t['machine']}): {t['command']}",
        ]))
    return "\n\n".join(blocks) + "\n\nuse: hinas restore --pretrained NAME IMAGE -o OUT; " \
                                 "details: the card.md next to each model's weights"


def results_table(results: list[dict[str, Any]], baseline: dict[str, str] | None
                  ) -> tuple[list[str], list[str]]:
    """Header and rows of a card's results table; with a `baseline` (`{"method", "label"}`)
    measured beside every result, its PSNR/SSIM and the model's gain over it."""
    if baseline is None:
        return (["| test | PSNR (dB) | SSIM | reference |", "|---|---:|---:|---|"],
                [f"| {result_label(r)} | {r['psnr']:.2f} | {r['ssim']:.4f} | "
                 f"{r.get('reference') or '–'} |" for r in results])
    return ([f"| test | PSNR (dB) | SSIM | {baseline['label']}, measured here (dB / SSIM) | "
             "gain (dB) | reference |", "|---|---:|---:|---:|---:|---|"],
            [f"| {result_label(r)} | {r['psnr']:.2f} | {r['ssim']:.4f} | "
             f"{r['baseline_psnr']:.2f} / {r['baseline_ssim']:.4f} | "
             f"{r['psnr'] - r['baseline_psnr']:+.2f} | {r.get('reference') or '–'} |"
             for r in results])


def model_card(info: dict[str, Any]) -> str:
    """The markdown model card of a shipped model, from its `pretrained.json`."""
    t, w, h = info["training"], *info["cost_input"]
    task = TaskConfig(**info["task"])  # validated at its evaluation level, the network's own
    validated = level_label({k: v for k, v in task.result_fields().items()
                             if k not in task.network_levels()})
    at = f", {validated}" if validated else ""
    base = info.get("baseline")
    header, rows = results_table(info["results"], base)
    latency = (f"- CPU latency: {info['latency_s'] * 1e3:.0f} ms at {w}×{h} "
               f"({info['latency_device']})")
    if "baseline_latency_s" in info:
        latency += (f"; {base['label']} on the same image: {info['baseline_latency_s']:.2f} s, "
                    f"{info['baseline_latency_s'] / info['latency_s']:.0f}× slower")
    return "\n".join([
        f"# {info['name']}",
        "",
        f"{info['description']}",
        "",
        "## Model",
        "",
        f"- task: {describe_task(info['task'])}",
        f"- architecture: `{info['arch']}` built from a genotype found by "
        f"{info['genotype_source']}",
        f"- parameters: {info['params']:,}; MACs: {info['macs'] / 1e9:.3f} G at {w}×{h}",
        latency,
        f"- weights: `model.safetensors`, SHA-256 `{info['sha256']}`",
        "",
        "## Training",
        "",
        f"- data: {t['data']}",
        f"- recipe: {t['recipe']}",
        f"- {t['iterations']} iterations, {t['seconds'] / 60:.1f} min wall-clock, "
        f"{t['cpu_seconds'] / 60:.1f} min of CPU time on {t['machine']}",
        f"- command: `{t['command']}`",
        "",
        "## Results",
        "",
        f"Measured with `hinas eval` ({info['convention']}).",
        "",
        *header,
        *rows,
        "",
        f"Validation PSNR during training (held-back training images, central crops{at}):",
        "",
        "| iteration | minutes | validation PSNR (dB) |",
        "|---:|---:|---:|",
        *(f"| {c['iter']} | {c['minutes']:.1f} | {c['val_psnr']:.2f} |"
          for c in info.get("curve", [])),
        *(["", f"![training loss and validation PSNR]({info['curve_plot']})"]
          if "curve_plot" in info else []),
        "",
        "## Limits",
        "",
        f"{info['limits']}",
        "",
        "## Use",
        "",
        f"`hinas restore --pretrained {info['name']} IMAGE -o OUT`, "
        f"`hinas eval --pretrained {info['name']} --data DIR`, or "
        f"`hinas.load_pretrained({info['name']!r})` in Python.",
        "",
    ])
