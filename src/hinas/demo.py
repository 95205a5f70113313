"""`hinas demo`: the main job end to end on photographs that ship inside scikit-image, no download.

Gray Gaussian denoising at σ = 25 (0–255 scale) by default; `hinas demo --task jpeg` runs the
same steps for blind gray JPEG artefact removal (qualities 10–40 in training, evaluated at 25),
compared with the decoded JPEG itself and the pretrained `jpeg-blind` (`DEMO_TASKS`):

1. the photographs of `TRAIN_IMAGES` and `TEST_IMAGES` are read from scikit-image's own package
   folder (only files inside the wheel, never the pooch-downloaded ones), converted to gray and
   written as PNGs to `OUT/data/train` and `OUT/data/test`; the test images are held out from
   search and training;
2. a HiNAS search on the training images (`OUT/search`, a run folder like `hinas search`'s);
3. training of the found network (`OUT/train`, a model folder like `hinas train`'s);
4. evaluation on the held-out images of the trained net, the pretrained model of the task that
   ships with hinas (see `hinas models`), the noisy input and BM3D (where the `bm3d` package is
   installed), with the same seeded noisy inputs (`OUT/eval/*.json`; for JPEG: the trained net,
   `jpeg-blind` and the decoded JPEG);
5. `OUT/report.md` and `OUT/report.html`: results table, before/after crops
   (`OUT/images/*.png`: noisy | BM3D | hinas | pretrained | clean), the architecture and the
   curves.

Budgets (`DEMO_BUDGETS`): the full demo is the `cpu` preset with a shorter search (12 epochs,
8 crops per image) and training (1200 iterations), sized to finish in under 10 minutes on 2 CPU
cores (measured: 4 min 42 s with the install on the 2-core development machine, search 78 s,
training 173 s, evaluation with BM3D 21 s; the JPEG demo takes the same budgets, not timed on
its own);
`tiny` (also `HINAS_DEMO_TINY=1`) is the `tiny` preset with a 2-epoch search, 20 training
iterations and 128-pixel test crops, a smoke run of about 5 s.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hinas.config import resolve
from hinas.data.images import load_image, save_image
from hinas.errors import HinasError
from hinas.io import atomic_write_text
from hinas.jobs.arch import describe_genotype
from hinas.jobs.evaluate import EvalReport, evaluate_model, load_test_images
from hinas.jobs.search import search
from hinas.jobs.train import train
from hinas.measures.metrics import to_uint8
from hinas.models.classical import METHODS
from hinas.models.folder import load_model
from hinas.models.pretrained import describe_task, load_pretrained, pretrained_info
from hinas.runtime.runs import Timer
from hinas.runtime.scoring import center_crop, make_pairs
from hinas.runtime.viz import plot_genotype

TRAIN_IMAGES = ("brick", "coffee", "coins", "grass", "gravel", "moon", "rocket",
                "motorcycle_left", "hubble_deep_field")
TEST_IMAGES = ("camera", "astronaut", "chelsea")
SIGMA = 25.0
PRETRAINED = "denoise-gray-blind"
METHOD_LABELS = {"noisy": "noisy input", "bm3d": "BM3D", "jpeg": "JPEG input",
                 "hinas": "hinas (found and trained)"}


@dataclass(frozen=True)
class DemoTask:
    """What a demo restores: the task's fields (`TaskConfig`) and command-line options, the
    report's title and sentence on the degradation, the classical methods compared (the first
    scores the degraded input itself), the pretrained model shown beside (if any), and the name
    of an input file in the closing hint."""

    name: str
    fields: dict[str, Any]
    options: str
    title: str
    degradation: str
    methods: tuple[str, ...]
    pretrained: str | None
    input_file: str


DEMO_TASKS = {
    "denoise": DemoTask("denoise", {"sigma": [SIGMA]}, f"--sigma {SIGMA:g}",
                        f"gray denoising, sigma = {SIGMA:g}",
                        f"additive Gaussian noise of sigma {SIGMA:g} on the 0-255 scale",
                        ("noisy", "bm3d"), PRETRAINED, "NOISY.png"),
    "jpeg": DemoTask("jpeg", {"quality": [10, 40]}, "--quality 10:40",
                     "gray JPEG artefact removal, quality 10-40",
                     "JPEG compression by Pillow at a quality drawn from 10-40 for every "
                     "training crop (blind), evaluated at quality 25",
                     ("jpeg",), "jpeg-blind", "COMPRESSED.jpg"),
}
"""The demos `hinas demo --task NAME` runs (default: denoise)."""


def demo_task(name: str | None) -> DemoTask:
    """The demo of task `name` (None: denoising); HinasError naming the known ones otherwise."""
    if (name or "denoise") not in DEMO_TASKS:
        raise HinasError(f"no demo for task {name!r}; known: {', '.join(DEMO_TASKS)}")
    return DEMO_TASKS[name or "denoise"]

DEMO_BUDGETS: dict[str, dict[str, Any]] = {
    "full": {"preset": "cpu", "test_crop": 0, "crop_view": 160, "overrides": [
        "search.epochs=12", "search.warmup_epochs=4", "search.eval_from_epoch=7",
        "search.crops_per_image=8", "search.val_crop=128",
        "train.iters=1200", "train.val_every=200", "train.val_crop=160", "train.log_every=20",
    ]},
    "tiny": {"preset": "tiny", "test_crop": 128, "crop_view": 96, "overrides": [
        "search.epochs=2", "search.warmup_epochs=1", "search.eval_from_epoch=2",
        "train.iters=20",
    ]},
}
"""Settings on top of a preset for the full and the tiny demo; `test_crop` > 0 scores central
crops of the test images, `crop_view` is the side of the before/after crops."""


def tiny_from_env() -> bool:
    """Whether `HINAS_DEMO_TINY` asks for the tiny demo (any value but empty or 0)."""
    return os.environ.get("HINAS_DEMO_TINY", "") not in ("", "0")


def skimage_image(name: str) -> np.ndarray:
    """The scikit-image photograph `name` as gray uint8 HxWx1, read from the files inside the
    installed package (HinasError if this installation lacks it)."""
    import skimage.data

    folder = Path(skimage.data.__file__).parent
    files = sorted(p for p in folder.glob(f"{name}.*") if p.suffix in (".png", ".jpg"))
    if not files:
        raise HinasError(f"{folder}: scikit-image ships no image {name!r} here")
    return load_image(files[0], channels=1)


def write_demo_data(folder: Path, test_crop: int = 0) -> tuple[Path, Path]:
    """Write the training and (optionally centre-cropped) test photographs as gray PNGs into
    `folder/train` and `folder/test`; return the two folders."""
    for sub, names, crop in (("train", TRAIN_IMAGES, 0), ("test", TEST_IMAGES, test_crop)):
        for name in names:
            img = skimage_image(name)
            save_image(folder / sub / f"{name}.png", center_crop(img, crop) if crop else img)
    return folder / "train", folder / "test"


def _before_after(out: Path, test_dir: Path, task, seed: int, restored: dict[str, Path],
                  size: int) -> dict[str, Path]:
    """One strip per test image: central crops of the noisy input, each method's output and
    the clean image side by side (white 4-px gaps); returns image name -> strip path."""
    images, _ = load_test_images(test_dir, 1)
    strips = {}
    for pair in make_pairs(images, task, seed):
        stem = Path(pair.name).stem
        panels = [to_uint8(pair.lq)]
        panels += [load_image(folder / f"{stem}.png", 1) for folder in restored.values()]
        panels.append(pair.gt)
        crops = [center_crop(p, size) for p in panels]
        gap = np.full((crops[0].shape[0], 4, 1), 255, np.uint8)
        strip = np.concatenate([x for c in crops for x in (c, gap)][:-1], axis=1)
        strips[pair.name] = out / f"{stem}.png"
        save_image(strips[pair.name], strip)
    return strips


def method_label(method: str, demo: DemoTask) -> str:
    """How the report names `method` (a classical method, `hinas` or `pretrained`)."""
    if method == "pretrained":
        return f"hinas pretrained ({demo.pretrained})"
    return METHOD_LABELS.get(method, method)


def _results_table(reports: list[EvalReport], demo: DemoTask
                   ) -> tuple[list[str], list[list[str]]]:
    names = [r["image"] for r in reports[0].rows]
    header = ["method", *[Path(n).stem for n in names], "mean PSNR", "mean SSIM", "s/image"]
    rows = []
    for rep in reports:
        rows.append([method_label(rep.method, demo),
                     *[f"{r['psnr']:.2f} / {r['ssim']:.3f}" for r in rep.rows],
                     f"{rep.mean['psnr']:.2f}", f"{rep.mean['ssim']:.4f}",
                     f"{rep.mean['seconds']:.2f}"])
    return header, rows


def render_markdown(blocks: list[tuple[str, Any]]) -> str:
    """Markdown of report blocks: (`h1`|`h2`, text), (`p`, text), (`code`, text),
    (`img`, (path, alt)), (`table`, (header, rows))."""
    lines = []
    for kind, value in blocks:
        if kind in ("h1", "h2"):
            lines.append(f"{'#' * int(kind[1])} {value}")
        elif kind == "p":
            lines.append(value)
        elif kind == "code":
            lines.append(f"```\n{value}\n```")
        elif kind == "img":
            lines.append(f"![{value[1]}]({value[0]})")
        elif kind == "table":
            header, rows = value
            lines.append("\n".join("| " + " | ".join(r) + " |" for r in
                                   [header, ["---"] * len(header), *rows]))
        lines.append("")
    return "\n".join(lines)


def render_html(blocks: list[tuple[str, Any]], title: str) -> str:
    """A standalone HTML page of the same report blocks as :func:`render_markdown`."""
    body = []
    for kind, value in blocks:
        if kind in ("h1", "h2"):
            body.append(f"<{kind}>{html.escape(value)}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{html.escape(value)}</p>")
        elif kind == "code":
            body.append(f"<pre>{html.escape(value)}</pre>")
        elif kind == "img":
            body.append(f'<p><img src="{html.escape(value[0])}" alt="{html.escape(value[1])}" '
                        f'style="max-width:100%"></p>')
        elif kind == "table":
            header, rows = value
            cells = ["<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"]
            cells += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                      for r in rows]
            body.append("<table border='1' cellpadding='4' style='border-collapse:collapse'>"
                        + "".join(cells) + "</table>")
    return (f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title></head>\n<body style='font-family:sans-serif;max-width:1100px'>\n"
            + "\n".join(body) + "\n</body></html>\n")


def run_demo(out: str | Path = "hinas-demo", tiny: bool | None = None,
             quiet: bool = False, task: str | None = None) -> Path:
    """Run the whole demo of `task` (see `DEMO_TASKS`; None: denoising) into `out` (see the
    module docstring); `tiny=None` reads `HINAS_DEMO_TINY`. Returns the path of report.md."""
    demo = demo_task(task)
    tiny = tiny_from_env() if tiny is None else tiny
    budget = DEMO_BUDGETS["tiny" if tiny else "full"]
    out = Path(out)
    if (out / "search" / "last.pt").exists() or (out / "train" / "last.pt").exists():
        raise HinasError(f"{out}: holds a demo already; remove it or choose another --out")
    total, times = Timer(), {}
    cfg = resolve(demo.name, budget["preset"], overrides=budget["overrides"],
                  task={**demo.fields, "channels": 1})
    train_dir, test_dir = write_demo_data(out / "data", budget["test_crop"])

    timer = Timer()
    genotype = search(cfg, train_dir, out / "search", quiet=quiet)
    times["search"] = timer.seconds()
    timer = Timer()
    spec = train(cfg, train_dir, out / "train", genotype, quiet=quiet)
    times["train"] = timer.seconds()

    timer = Timer()
    images, notes = load_test_images(test_dir, 1)
    common = {"data": "held-out skimage photographs", "seed": cfg.seed, "quiet": quiet}
    baseline, *others = demo.methods
    reports = [evaluate_model(baseline, cfg.task, images, notes=notes, **common)]
    restored = {}
    for method in others:
        if METHODS.get(method).available:
            restored[METHOD_LABELS[method]] = out / "eval" / method
            reports.append(evaluate_model(method, cfg.task, images,
                                          save_dir=restored[METHOD_LABELS[method]], **common))
    restored["hinas"] = out / "eval" / "hinas"
    reports.append(evaluate_model(load_model(out / "train"), cfg.task, images,
                                  method="hinas", save_dir=restored["hinas"], **common))
    if demo.pretrained:
        restored[method_label("pretrained", demo)] = out / "eval" / "pretrained"
        reports.append(evaluate_model(load_pretrained(demo.pretrained), cfg.task, images,
                                      method="pretrained", save_dir=out / "eval" / "pretrained",
                                      **common))
    for rep in reports:
        rep.save_json(out / "eval" / f"{rep.method}.json")
    times["evaluate"] = timer.seconds()

    strips = _before_after(out / "images", test_dir, cfg.task, cfg.seed, restored,
                           budget["crop_view"])
    plot_genotype(genotype, out / "architecture.png", spec.options["width_multiplier"])
    times["total"] = total.seconds()
    blocks = _report_blocks(out, demo, cfg, genotype, spec, reports, strips, list(restored),
                            times, tiny)
    atomic_write_text(out / "report.md", render_markdown(blocks))
    atomic_write_text(out / "report.html", render_html(blocks, f"hinas demo: {demo.title}"))
    return out / "report.md"


def _report_blocks(out: Path, demo: DemoTask, cfg, genotype, spec, reports: list[EvalReport],
                   strips: dict[str, Path], methods: list[str], times: dict[str, float],
                   tiny: bool) -> list[tuple[str, Any]]:
    rel = lambda p: Path(p).relative_to(out).as_posix()  # noqa: E731
    s, t = cfg.search, cfg.train
    header, rows = _results_table(reports, demo)
    fresh = next(r for r in reports if r.method == "hinas")
    blocks: list[tuple[str, Any]] = [
        ("h1", f"hinas demo: {demo.title}" + (" (tiny smoke run)" if tiny else "")),
        ("p", f"Everything here ran on {reports[-1].device} in {times['total']:.0f} s, with no "
              f"download: {len(TRAIN_IMAGES)} training and {len(TEST_IMAGES)} held-out test "
              f"photographs from scikit-image (gray), {demo.degradation}. The test images were "
              f"used neither in the search nor in training."),
        ("table", (["stage", "settings", "seconds"], [
            ["search", f"preset {cfg.preset}: {s.epochs} epochs ({s.warmup_epochs} warm-up), "
                       f"W={cfg.space.width}, L={cfg.space.layers}, N={cfg.space.nodes}, "
                       f"{s.crop}px crops", f"{times['search']:.0f}"],
            ["train", f"{t.iters} iterations, batch {t.batch_size}, {t.crop}px crops, "
                      f"lr {t.lr:g} ({t.schedule})", f"{times['train']:.0f}"],
            ["evaluate", ", ".join(r.method for r in reports), f"{times['evaluate']:.0f}"],
        ])),
        ("h2", "Results on the held-out images (PSNR dB / SSIM)"),
        ("table", (header, rows)),
        ("p", f"The trained network has {spec.meta['params']:,} parameters "
              f"({fresh.macs / 1e9:.3f} G MACs at {fresh.macs_input[0]}x"
              f"{fresh.macs_input[1]}). Convention: {fresh.convention.describe()}."),
    ]
    pretrained = next((r for r in reports if r.method == "pretrained"), None)
    if pretrained:
        blocks.append(
            ("p", f"Beside it, the pretrained model that ships with hinas ({demo.pretrained}: "
                  f"{describe_task(pretrained_info(demo.pretrained)['task'])}, "
                  f"{pretrained.params:,} parameters; see `hinas models`): what a user gets with "
                  f"no search and no training, "
                  f"`hinas restore --pretrained {demo.pretrained} {demo.input_file} -o OUT`."))
    blocks += [
        ("h2", "Before / after"),
        ("p", f"Central crops, left to right: {METHOD_LABELS[demo.methods[0]]} | "
              + " | ".join(methods) + " | clean."),
    ]
    for name, path in strips.items():
        blocks += [("p", Path(name).stem), ("img", (rel(path), f"{name}: before and after"))]
    blocks += [
        ("h2", "Found architecture"),
        ("img", ("architecture.png", "architecture")),
        ("code", describe_genotype(genotype, spec.options["width_multiplier"])),
        ("h2", "Curves"),
        ("p", "Search (supernet loss, validation PSNR/SSIM per epoch):"),
        ("img", ("search/curves.png", "search curves")),
        ("p", "Training of the found network (loss, validation PSNR/SSIM per iteration):"),
        ("img", ("train/curves.png", "training curves")),
        ("h2", "Files"),
        ("p", "data/ (the images), search/ (search run: genotype.json, config.yaml, "
              "metrics.jsonl), train/ (trained model: model.safetensors, model.json, "
              "genotype.json), eval/ (results as JSON and restored images), images/ (crops). "
              "Use the model with `hinas restore --model " + str(out / "train")
              + f" {demo.input_file} -o OUT` or `hinas.load_model(...)`."),
    ]
    return blocks
