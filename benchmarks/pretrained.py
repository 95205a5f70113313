"""Package a trained model as a pretrained model of the package: copy its weights, genotype and
model file into `src/hinas/weights/<name>/` (or `--dest DIR`), measure it, and write
`pretrained.json` and the model card (`card.md`, from `hinas.models.pretrained.model_card`).

Measured here: PSNR/SSIM with `hinas.jobs.evaluate` (the same code as `hinas eval`, on
`--device`) on the test sets and levels the task names (its `package_tests()`, hinas.tasks:
Set12 at σ = 15, 25, 50 for gray denoising, Set5, all RGB, for colour denoising; at JPEG
quality 10, 20, 30, at three camera noises; Set5 and Set14 at the model's scale for SR)
(`--test-count N`: the first N images of each, for smoke checks), and with `--unseen DIR` on
the first `--unseen-count` photographs of a folder no part of the model was trained or chosen
on (`--unseen skimage`: `SKIMAGE_PHOTOS`, the photographs shipped with scikit-image), at the
same settings. Beside every result the task's classical baseline (its `baseline`: BM3D, the
JPEG input itself, bicubic) is scored on the same inputs, unless `--no-baseline`. Parameters
and MACs; the median CPU latency (`hinas.measures.complexity.measure_latency`, `--threads`
threads) of the BatchNorm-folded network that `hinas restore` runs, at the task's `cost_size`
(481×321, a BSDS500 photograph's size; a 128×128 LR input for SR), and for a BM3D baseline
BM3D's on the same image. The
model's own run records the training iterations, wall / CPU seconds and the validation curve;
`--command` is the training command as run.

Prints (and with `--json` writes) the pretrained.json content.

Example: python benchmarks/pretrained.py --run RUNDIR --name sr-x4 --data ../shared/data
--command "hinas train ..." --description "..." --genotype-source "..." --limits "..."
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

WEIGHTS = Path(__file__).resolve().parents[1] / "src" / "hinas" / "weights"
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
printed beside each result in the card, by the result's label."""
HEADLINES = {"Set12 σ=50": ("BM3D", 26.72), "Set5 ×2": ("FSRCNN", 37.05),
             "Set5 ×4": ("FSRCNN", 30.71), "Set12 q=10": ("JPEG input", None)}
"""The result `hinas models` shows for a model (the first of its results named here) and the
anchor it is read against: a published figure of `REFERENCES`, or None for the baseline
measured beside it."""
BM3D_LATENCY_SIGMA = 25.0
CURVES_FILE = "curves.png"
"""The training run's loss and validation plot, shipped beside the card."""
SKIMAGE_PHOTOS = ("camera", "coins", "moon", "brick", "grass", "gravel", "astronaut", "coffee",
                  "chelsea", "rocket")
"""`--unseen skimage`: photographs shipped with scikit-image, in no training set of the zoo."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", required=True, help="trained model folder (`hinas train`)")
    p.add_argument("--name", required=True, help="name of the pretrained model")
    p.add_argument("--data", required=True, help="folder holding Set5, Set12, Set14")
    p.add_argument("--description", required=True)
    p.add_argument("--genotype-source", required=True, help="which search found the genotype")
    p.add_argument("--command", required=True, help="the training command as it was run")
    p.add_argument("--train-data", required=True, help="training images, in words")
    p.add_argument("--recipe", required=True, help="training recipe, in words")
    p.add_argument("--machine", required=True, help="where it was trained, in words")
    p.add_argument("--limits", required=True, help="known limits, in words")
    p.add_argument("--unseen", metavar="DIR",
                   help="photographs never trained or chosen on, scored at the same settings; "
                        f"`skimage`: the scikit-image photographs {', '.join(SKIMAGE_PHOTOS)} "
                        "(gray)")
    p.add_argument("--unseen-name", default="unseen", help="the --unseen set's name in the card")
    p.add_argument("--unseen-count", type=int, default=50,
                   help="score the first N images of --unseen (sorted by path)")
    p.add_argument("--no-baseline", dest="baseline", action="store_false",
                   help="do not score the classical baseline beside every result")
    p.add_argument("--test-count", type=int, metavar="N",
                   help="score the first N images of each standard test set (default: all)")
    p.add_argument("--dest", metavar="DIR", help="write the model here (default: the package's "
                   "src/hinas/weights/NAME)")
    p.add_argument("--device", default="cpu", help="where the test sets are scored (the latency "
                   "is the CPU's)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", metavar="PATH", help="also write the JSON here")
    return p.parse_args(argv)


def validation_curve(run: Path) -> list[dict]:
    """Validation PSNR against wall-clock training minutes, from the run's metrics.jsonl (the
    minutes sum the logged step times up to each validation)."""
    minutes, curve = 0.0, []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        minutes += record.get("seconds", 0.0) / 60
        if "val_psnr" in record:
            curve.append({"iter": record["iter"], "minutes": round(minutes, 2),
                          "val_psnr": record["val_psnr"]})
    return curve


def test_images(source: str | Path, channels: int, count: int | None) -> dict:
    """The first `count` (None: all) test images of the folder `source`, or of
    `SKIMAGE_PHOTOS` for `skimage` (gray models only), as `hinas eval` loads them."""
    from hinas.errors import HinasError
    from hinas.jobs.evaluate import load_test_images

    if source == "skimage":
        from hinas.demo import skimage_image

        if channels != 1:
            raise HinasError("--unseen skimage: gray photographs, for gray models only")
        images = {Path(f"{name}.png"): skimage_image(name) for name in SKIMAGE_PHOTOS}
    else:
        images, _ = load_test_images(source, channels)
    return dict(list(images.items())[:count])


def package(args: argparse.Namespace) -> dict:
    """Copy the model into the package, measure it, write pretrained.json and card.md."""
    import torch

    from hinas.errors import HinasError
    from hinas.io import atomic_write_text
    from hinas.jobs.evaluate import evaluate_classical, evaluate_model
    from hinas.measures.complexity import count_macs, count_params, measure_latency
    from hinas.measures.metrics import Convention
    from hinas.models.fold import fold_batchnorm
    from hinas.models.folder import WEIGHTS_FILE, ModelSpec, load_model
    from hinas.models.pretrained import (
        CARD_FILE,
        INFO_FILE,
        model_card,
        result_label,
        sha256_file,
    )
    from hinas.runtime.execution import describe_device
    from inference import bm3d_latency

    torch.set_num_threads(args.threads)
    run, dest = Path(args.run), Path(args.dest) if args.dest else WEIGHTS / args.name
    spec = ModelSpec.load(run)
    dest.mkdir(parents=True, exist_ok=True)
    run_meta = spec.meta
    spec.meta = {k: run_meta[k] for k in ("iterations", "best_iter", "best_val_psnr", "params")}
    if spec.genotype is not None:  # the search's file lists are the search machine's paths
        spec.genotype.meta = {k: v for k, v in spec.genotype.meta.items() if k != "data_split"}
    spec.save(dest)
    (dest / WEIGHTS_FILE).write_bytes((run / WEIGHTS_FILE).read_bytes())
    model = load_model(dest)
    task = spec.task
    standard = task.package_tests()
    if not standard:
        raise HinasError(f"the {task.name} task names no test sets to package a model with")
    method, label = task.baseline
    tests = [(folder, Path(args.data) / folder, args.test_count, fields)
             for folder, fields in standard]
    if args.unseen:
        tests += [(args.unseen_name, args.unseen, args.unseen_count, fields)
                  for _, fields in standard]
    results, headline = [], None
    for name, source, count, fields in tests:
        test_task = task.at_evaluation().at_levels(fields)
        images = test_images(source, task.channels, count)
        report = evaluate_model(model, test_task, images, method=args.name, data=name,
                                device=args.device)
        test = {"test": name, **test_task.result_fields()}
        key = result_label(test)
        result = {**test, "psnr": report.mean["psnr"], "ssim": report.mean["ssim"],
                  "seconds_per_image": report.mean["seconds"], "images": len(images),
                  "reference": REFERENCES.get(key)}
        if args.baseline:
            base = evaluate_classical(method, test_task, images, data=name).mean
            result.update(baseline_psnr=base["psnr"], baseline_ssim=base["ssim"])
        results.append(result)
        anchor, anchor_psnr = HEADLINES.get(key, (None, None))
        if headline is None and anchor and (anchor_psnr is not None or args.baseline):
            headline = {**test, "anchor": anchor,
                        "anchor_psnr": result["baseline_psnr"] if anchor_psnr is None
                        else anchor_psnr,
                        "anchor_source": "measured" if anchor_psnr is None else "published"}
    model.to("cpu")
    w, h = task.cost_size
    x = torch.rand(1, task.channels, h, w)
    with torch.no_grad():
        latency = measure_latency(fold_batchnorm(model), x, args.repeats)
    extra = {}
    if method == "bm3d" and args.baseline:
        bm3d = bm3d_latency(x, BM3D_LATENCY_SIGMA, args.repeats, 1)
        extra = {"baseline_latency_s": bm3d} if isinstance(bm3d, float) else {}
    info = {
        "name": args.name, "description": args.description, "task": dataclasses.asdict(task),
        "arch": spec.arch, "genotype_source": args.genotype_source,
        "sha256": sha256_file(dest / WEIGHTS_FILE), "params": count_params(model),
        "macs": count_macs(model, task.channels, h, w), "cost_input": [w, h],
        "latency_s": latency, **extra,
        "latency_device": f"{describe_device('cpu')}, load average "
                          f"{os.getloadavg()[0]:.1f} while measured",
        "training": {"command": args.command, "data": args.train_data, "recipe": args.recipe,
                     "iterations": run_meta["iterations"], "seconds": run_meta["train_seconds"],
                     "cpu_seconds": run_meta.get("train_cpu_seconds", run_meta["train_seconds"]),
                     "machine": args.machine},
        "convention": Convention.for_task(task.name, task.out_scale).describe(),
        "results": results, **({"headline": headline} if headline else {}),
        **({"baseline": {"method": method, "label": label}} if args.baseline else {}),
        "limits": args.limits,
    }
    info["curve"] = validation_curve(run)
    if (run / CURVES_FILE).exists():
        (dest / CURVES_FILE).write_bytes((run / CURVES_FILE).read_bytes())
        info["curve_plot"] = CURVES_FILE
    atomic_write_text(dest / INFO_FILE, json.dumps(info, indent=1) + "\n")
    atomic_write_text(dest / CARD_FILE, model_card(info))
    return info


def main(argv: list[str] | None = None) -> dict:
    """Package the model, print the JSON and write the requested file."""
    args = parse_args(argv)
    from jsonout import command_line, emit

    info = package(args)
    emit({**info, "packaged_by": command_line(__file__, argv)}, args.json)
    return info


if __name__ == "__main__":
    main(sys.argv[1:])
