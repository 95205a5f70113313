"""Markdown tables and a speed–quality plot from the JSON files of the benchmark scripts.

Reads, under `--results` (default `benchmarks/results`), every `supernet_cost*.json`
(`supernet_cost.py`), `search_cost*.json` (`search_cost.py`), `quality*.json` (`quality.py`) and
`inference*.json` (`inference.py`), `distributed_throughput*.json` (`distributed_throughput.py`),
`search_vs_random*.json` and `selection_signals*.json`, renders one markdown section per file, and
draws `speed_quality.png` there: test PSNR against forward latency of every trained network (one
panel per quality file; classic methods as horizontal lines). With `--doc`, the markdown replaces
the part of that file between `<!-- results:start -->` and `<!-- results:end -->` (the plot linked
relative to it); without it, or when the markers are absent, the markdown is printed.

Example: python benchmarks/report.py --doc docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

if not __package__:  # run as a file, `python benchmarks/NAME.py`: the package made importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

START, END = "<!-- results:start -->", "<!-- results:end -->"
PLOT = "speed_quality.png"


def supernet_cost_markdown(summary: dict) -> str:
    """A `supernet_cost.py` summary as a markdown table."""
    c = summary["config"]
    widths = "/".join(f"{c['width'] * f:g}" for f in c["width_factors"])
    levels = {"width": "width levels", "resolution": "resolution levels"}[c.get("levels",
                                                                              "width")]
    start = f", start part ×1/{c['start_scale']}" if c.get("start_scale", 1) > 1 else ""
    lines = [f"One search step, {c['task']}, {levels}{start}, L={c['layers']}, N={c['nodes']}, "
             f"widths {widths}, batch {c['batch']}, {c['patch']}×{c['patch']} px, on "
             f"{summary['device']}",
             "",
             "| mode | step (s) | peak RSS (MB) | weight parameters |",
             "|---|---:|---:|---:|"]
    for mode in ("sharing", "eq6", "sharing_ckpt", "sharing_cl"):
        if mode in summary:
            m = summary[mode]
            lines.append(f"| {mode} | {m['step_s']:.2f} | {m['peak_rss_mb']:.0f} | "
                         f"{m['params']:,} |")
    loads = [summary[mode]["load_1min"] for mode in summary if isinstance(summary[mode], dict)
             and summary[mode].get("load_1min") is not None]
    if loads:
        lines.append(f"\nmachine load (1-min average) while measured: {min(loads):g}–"
                     f"{max(loads):g} on {summary['config']['threads']} thread(s)")
    ratios = [f"{label} {summary[key]}" for key, label in
              (("memory_ratio", "memory Eq. 6 / Eq. 5"), ("time_ratio", "time Eq. 6 / Eq. 5"),
               ("theory_ratio", "cell work Eq. 6 / Eq. 5"),
               ("ckpt_memory_fraction", "memory with checkpointing / without"),
               ("sharing_over_eq6", "memory Eq. 5 / Eq. 6"),
               ("ckpt_over_eq6", "memory Eq. 5 with checkpointing / Eq. 6"),
               ("channels_last_speedup", "step speed-up with channels-last (sharing / sharing_cl)"))
              if key in summary]
    if ratios:
        lines.append("\n" + "; ".join(ratios))
    return "\n".join(lines) + "\n"


def load_results(folder: Path) -> list[tuple[str, Path, dict]]:
    """(kind, path, content) of every benchmark JSON file in `folder`, in a stable order."""
    found = []
    for kind in ("supernet_cost", "search_cost", "quality", "inference", "distributed_throughput",
                 "search_vs_random", "selection_signals"):
        for path in sorted(folder.glob(f"{kind}*.json")):
            try:
                found.append((kind, path, json.loads(path.read_text())))
            except json.JSONDecodeError as err:
                raise SystemExit(f"report: {path}: not valid JSON ({err.msg})") from None
    return found


def test_set_name(path: str) -> str:
    """The name of a test set folder: `Set12` for `.../Set12`, `Set14` for `.../Set14/HR`."""
    parts = Path(path).parts
    return parts[-2] if len(parts) > 1 and parts[-1] in ("HR", "LR") else parts[-1]


def load_text(methods: dict) -> str:
    """The machine load recorded with the latencies, in words."""
    loads = [m["load_1min"] for m in methods.values() if m.get("load_1min") is not None]
    if not loads:
        return "machine load not recorded (see the notes under the table)"
    return f"1-min load average {min(loads):.1f}–{max(loads):.1f} while measured"


def _spread(ax, points: list[tuple[float, float, str]], min_gap: float = 13.0) -> None:
    """Label points beside them (left of a point that has a neighbour close on its right),
    moving labels up until they are `min_gap` display points apart from nearby labels."""
    scale = 72 / ax.figure.dpi
    pts = [(*(ax.transData.transform((x, y)) * scale), name) for x, y, name in points]
    placed: list[tuple[float, float, int]] = []
    for (px, py, name), (x, y, _) in sorted(zip(pts, points, strict=True),
                                            key=lambda t: t[0][1]):
        side = -1 if any(0 < qx - px < 70 and abs(qy - py) < min_gap for qx, qy, _ in pts) else 1
        ty = py
        for qx, qy, qside in placed:
            if qside == side and abs(qx - px) < 90 and ty - qy < min_gap:
                ty = qy + min_gap
        placed.append((px, ty, side))
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(6 * side, ty - py - 3),
                    ha="left" if side > 0 else "right", fontsize=9,
                    arrowprops={"arrowstyle": "-", "color": "#999999", "lw": 0.6}
                    if ty - py > 4 else None)


def plot_speed_quality(quality: list[tuple[Path, dict]], path: Path) -> None:
    """PSNR against latency of the networks of each quality summary (one panel each), classic
    methods as horizontal lines; each panel states the test set, budget, threads and load."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from benchmarks.quality import task_label
    from hinas.runtime.viz import plain_log_ticks

    fig, axes = plt.subplots(1, len(quality), figsize=(6.4 * len(quality), 5.2), squeeze=False)
    for ax, (_, summary) in zip(axes[0], quality, strict=True):
        c, methods = summary["config"], summary["methods"]
        nets = {n: m for n, m in methods.items() if m["latency_s"] is not None}
        xs = [m["latency_s"] * 1e3 for m in nets.values()]
        ax.scatter(xs, [m["psnr"] for m in nets.values()], color="#0072B2", zorder=3)
        ax.set_xscale("log")
        ax.set_xlim(min(xs) / 1.5, max(xs) * 2.5)
        for name, m in methods.items():
            if m["latency_s"] is None:
                ax.axhline(m["psnr"], ls="--", lw=0.8, color="gray")
                ax.annotate(f"{name} (classic)", (1, m["psnr"]), xycoords=("axes fraction", "data"),
                            xytext=(-4, 3), textcoords="offset points", ha="right", fontsize=9,
                            color="dimgray")
        plain_log_ticks(ax.xaxis)
        ax.yaxis.get_major_formatter().set_useOffset(False)
        psnrs = [m["psnr"] for m in methods.values() if m["psnr"] > 0]
        ax.set_ylim(min(psnrs) - 0.5, max(psnrs) + 0.5)
        fig.canvas.draw()  # label placement needs the final axis limits
        _spread(ax, [(m["latency_s"] * 1e3, m["psnr"], n) for n, m in nets.items()])
        w, h = c["cost_size"]
        ax.set_xlabel(f"forward latency at {w}×{h} px (ms, log scale)", fontsize=10)
        ax.set_ylabel("PSNR (dB)", fontsize=10)
        ax.set_title(f"{task_label(c)} on {test_set_name(c['test'])} ({c['images']} images), "
                     f"{c['iters']} training iterations each", fontsize=10)
        ax.text(0, -0.2, f"latency: median of {c['repeats']} runs on {summary['device']}\n"
                f"{load_text(methods)}", transform=ax.transAxes,
                fontsize=8, va="top", color="dimgray")
        ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def render(folder: Path, doc_dir: Path = Path("."), draw: bool = True) -> str:
    """The markdown of every result file in `folder` (drawing the speed–quality plot there,
    unless not `draw`, and linking it relative to `doc_dir`, the folder of the document that
    will hold the markdown)."""
    from benchmarks.distributed_throughput import markdown as distributed_markdown
    from benchmarks.inference import markdown as inference_markdown
    from benchmarks.quality import markdown as quality_markdown
    from benchmarks.search_cost import markdown as search_cost_markdown
    from benchmarks.search_vs_random import markdown as search_vs_random_markdown
    from benchmarks.selection_signals import markdown as selection_signals_markdown

    renderers = {"supernet_cost": supernet_cost_markdown, "search_cost": search_cost_markdown,
                 "quality": quality_markdown, "inference": inference_markdown,
                 "distributed_throughput": distributed_markdown,
                 "search_vs_random": search_vs_random_markdown,
                 "selection_signals": selection_signals_markdown}
    titles = {"supernet_cost": "Supernet step cost", "search_cost": "Search cost",
              "quality": "Quality under one training budget", "inference": "Inference cost",
              "distributed_throughput": "Distributed search throughput",
              "search_vs_random": "Ground truth: matched-size genotypes trained alone",
              "selection_signals": "Selection signals against the ground truth"}
    results = load_results(folder)
    if not results:
        return f"No benchmark results in `{folder}` yet.\n"
    parts = [f"### {titles[kind]} (`{path.name}`)\n\n{renderers[kind](summary)}"
             + (f"\nMeasured with `{summary['command']}`\n" if "command" in summary else "")
             for kind, path, summary in results]
    quality = [(path, summary) for kind, path, summary in results if kind == "quality"]
    if quality:
        if draw:
            plot_speed_quality(quality, folder / PLOT)
        link = Path(os.path.relpath(folder / PLOT, doc_dir)).as_posix()
        parts.append(f"![PSNR against latency]({link})\n")
    return "\n".join(parts)


def replace_section(text: str, content: str) -> str | None:
    """`text` with the part between the results markers replaced by `content` (None if the
    markers are absent)."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        return None
    return text[:start + len(START)] + "\n" + content.rstrip("\n") + "\n" + text[end:]


def main(argv: list[str] | None = None) -> str:
    """Render the results; replace the marked section of `--doc` or print the markdown."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--results", default="benchmarks/results", help="folder of result JSON files")
    p.add_argument("--doc", help="markdown file whose marked results section is replaced "
                                 "(docs/benchmarks.md)")
    args = p.parse_args(argv)
    doc = Path(args.doc) if args.doc else None
    markdown = render(Path(args.results), doc.parent if doc else Path("."))
    if doc:
        updated = replace_section(doc.read_text(), markdown)
        if updated is not None:
            doc.write_text(updated)
            print(f"results section of {doc} updated")
            return markdown
        print(f"report: no {START} … {END} markers in {doc}; markdown follows",
              file=sys.stderr)
    print(markdown)
    return markdown


if __name__ == "__main__":
    main()
