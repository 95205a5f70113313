"""Package a trained model as a pretrained model of the package: measure it, then copy its
weights, genotype and model file into `src/hinas/weights/<name>/` (or `--dest DIR`) and write
`pretrained.json` and the model card (`card.md`): `hinas.models.pretrained.write_pretrained`,
whose `pretrained_record` is the file's schema.

Measured here: PSNR/SSIM with `hinas.jobs.evaluate` (the same code as `hinas eval`, on
`--device`) on the test sets and levels the task names (its `package_tests()`, hinas.tasks:
Set12 at σ = 15, 25, 50 for gray denoising, Set5, all RGB, for colour denoising; at JPEG
quality 10, 20, 30, at three camera noises; Set5 and Set14 at the model's scale for SR)
(`--test-count N`: the first N images of each, for smoke checks), and with `--unseen DIR` on
the first `--unseen-count` photographs of a folder no part of the model was trained or chosen
on (`--unseen skimage`: `SKIMAGE_PHOTOS`, the photographs shipped with scikit-image), at the
same settings. Beside every result the task's classical baseline (its `baseline`: BM3D, the
JPEG input itself, bicubic) is scored on the same inputs, unless `--no-baseline`. Parameters
and MACs; the median CPU latency (`hinas.models.cost.model_cost`, `--threads` threads) of the
BatchNorm-folded network that `hinas restore` runs, at the task's `cost_size`
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
import sys
from pathlib import Path

if not __package__:  # run as a file, `python benchmarks/NAME.py`: the package made importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WEIGHTS = Path(__file__).resolve().parents[1] / "src" / "hinas" / "weights"
BM3D_LATENCY_SIGMA = 25.0
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

    import hinas
    from benchmarks.harness import device, load_1min
    from benchmarks.inference import bm3d_latency
    from hinas.errors import HinasError
    from hinas.jobs.evaluate import evaluate_model
    from hinas.models.cost import model_cost
    from hinas.models.pretrained import Provenance, write_pretrained

    torch.set_num_threads(args.threads)
    run, dest = Path(args.run), Path(args.dest) if args.dest else WEIGHTS / args.name
    model = hinas.load_model(run)
    task = model.built_for
    standard = task.package_tests()
    if not standard:
        raise HinasError(f"the {task.name} task names no test sets to package a model with")
    method, _ = task.baseline
    tests = [(folder, Path(args.data) / folder, args.test_count, fields)
             for folder, fields in standard]
    if args.unseen:  # at every setting of the standard tests, once
        settings = []
        for _, fields in standard:
            if fields not in settings:
                settings.append(fields)
        tests += [(args.unseen_name, args.unseen, args.unseen_count, fields)
                  for fields in settings]
    results = []
    for name, source, count, fields in tests:
        test_task = task.at_evaluation().at_levels(fields)
        images = test_images(source, task.channels, count)
        report = evaluate_model(model, test_task, images, method=args.name, data=name,
                                device=args.device)
        result = {"test": name, **test_task.result_fields(), "psnr": report.mean["psnr"],
                  "ssim": report.mean["ssim"], "seconds_per_image": report.mean["seconds"],
                  "images": len(images)}
        if args.baseline:
            base = evaluate_model(method, test_task, images, data=name).mean
            result.update(baseline_psnr=base["psnr"], baseline_ssim=base["ssim"])
        results.append(result)
    cost = model_cost(model.to("cpu"), task, repeats=args.repeats)
    bm3d = None
    if method == "bm3d" and args.baseline:
        w, h = cost.size
        bm3d = bm3d_latency(torch.rand(1, task.channels, h, w), BM3D_LATENCY_SIGMA,
                            args.repeats, 1)
    made = Provenance(args.description, args.genotype_source, args.command, args.train_data,
                      args.recipe, args.machine, args.limits)
    return write_pretrained(run, dest, args.name, made, results, cost,
                            f"{device('cpu')}, load average {load_1min():.1f} while measured",
                            bm3d if isinstance(bm3d, float) else None, args.baseline)


def main(argv: list[str] | None = None) -> dict:
    """Package the model, print the JSON and write the requested file."""
    args = parse_args(argv)
    from benchmarks.harness import command_line, emit

    info = package(args)
    emit({**info, "packaged_by": command_line(__file__, argv)}, args.json)
    return info


if __name__ == "__main__":
    main(sys.argv[1:])
