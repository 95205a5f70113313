"""Markdown tables and a speed–quality plot from the JSON files of the benchmark scripts.

Reads, under `--results` (default `benchmarks/results`), every `supernet_cost*.json`
(`supernet_cost.py`), `search_cost*.json` (`search_cost.py`), `quality*.json` (`quality.py`) and
`inference*.json` (`inference.py`), renders one markdown section per file, and draws
`speed_quality.png` there: test PSNR against forward latency of every trained network (one panel
per quality file; classic methods as horizontal lines). With `--readme`, the markdown replaces the
part of that file between `<!-- results:start -->` and `<!-- results:end -->`; without it, or when
the markers are absent, the markdown is printed.

Example: python benchmarks/report.py --readme README.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

START, END = "<!-- results:start -->", "<!-- results:end -->"
PLOT = "speed_quality.png"


def supernet_cost_markdown(summary: dict) -> str:
    """A `supernet_cost.py` summary as a markdown table."""
    c = summary["config"]
    widths = "/".join(f"{c['width'] * f:g}" for f in c["width_factors"])
    lines = [f"One search step, {c['task']}, L={c['layers']}, N={c['nodes']}, widths {widths}, "
             f"batch {c['batch']}, {c['patch']}×{c['patch']} px, on {summary['device']}",
             "",
             "| mode | step (s) | peak RSS (MB) | weight parameters |",
             "|---|---:|---:|---:|"]
    for mode in ("sharing", "eq6", "sharing_ckpt", "sharing_cl"):
        if mode in summary:
            m = summary[mode]
            lines.append(f"| {mode} | {m['step_s']:.2f} | {m['peak_rss_mb']:.0f} | "
                         f"{m['params']:,} |")
    ratios = [f"{label} {summary[key]}" for key, label in
              (("memory_ratio", "memory Eq. 6 / Eq. 5"), ("time_ratio", "time Eq. 6 / Eq. 5"),
               ("theory_ratio", "cell work Eq. 6 / Eq. 5"),
               ("ckpt_memory_fraction", "memory with checkpointing / without"),
               ("channels_last_speedup", "step speed-up with channels-last (sharing / sharing_cl)"))
              if key in summary]
    if ratios:
        lines.append("\n" + "; ".join(ratios))
    return "\n".join(lines) + "\n"


def load_results(folder: Path) -> list[tuple[str, Path, dict]]:
    """(kind, path, content) of every benchmark JSON file in `folder`, in a stable order."""
    found = []
    for kind in ("supernet_cost", "search_cost", "quality", "inference"):
        for path in sorted(folder.glob(f"{kind}*.json")):
            try:
                found.append((kind, path, json.loads(path.read_text())))
            except json.JSONDecodeError as err:
                raise SystemExit(f"report: {path}: not valid JSON ({err.msg})") from None
    return found


def plot_speed_quality(quality: list[tuple[Path, dict]], path: Path) -> None:
    """PSNR against latency of the networks of each quality summary (one panel each)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from quality import task_label

    fig, axes = plt.subplots(1, len(quality), figsize=(5.5 * len(quality), 4.2), squeeze=False)
    for ax, (source, summary) in zip(axes[0], quality, strict=True):
        c = summary["config"]
        for name, m in summary["methods"].items():
            if m["latency_s"] is not None:
                ax.scatter(m["latency_s"] * 1e3, m["psnr"])
                ax.annotate(name, (m["latency_s"] * 1e3, m["psnr"]), textcoords="offset points",
                            xytext=(4, 4), fontsize=8)
            else:
                ax.axhline(m["psnr"], ls="--", lw=0.8, color="gray")
                ax.annotate(name, (0, m["psnr"]), xycoords=("axes fraction", "data"),
                            xytext=(2, 2), textcoords="offset points", fontsize=8, color="gray")
        w, h = c["cost_size"]
        ax.set_xscale("log")
        ax.set(xlabel=f"latency at {w}×{h} (ms, log scale)", ylabel="PSNR (dB)",
               title=f"{task_label(c)} ({source.stem})")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def render(folder: Path) -> str:
    """The markdown of every result file in `folder` (drawing the speed–quality plot there)."""
    from inference import markdown as inference_markdown
    from quality import markdown as quality_markdown
    from search_cost import markdown as search_cost_markdown

    renderers = {"supernet_cost": supernet_cost_markdown, "search_cost": search_cost_markdown,
                 "quality": quality_markdown, "inference": inference_markdown}
    titles = {"supernet_cost": "Supernet step cost", "search_cost": "Search cost",
              "quality": "Quality under one training budget", "inference": "Inference cost"}
    results = load_results(folder)
    if not results:
        return f"No benchmark results in `{folder}` yet.\n"
    parts = [f"#### {titles[kind]} (`{path.name}`)\n\n{renderers[kind](summary)}"
             + (f"\nMeasured with `{summary['command']}`\n" if "command" in summary else "")
             for kind, path, summary in results]
    quality = [(path, summary) for kind, path, summary in results if kind == "quality"]
    if quality:
        plot_speed_quality(quality, folder / PLOT)
        parts.append(f"![PSNR against latency]({folder.as_posix()}/{PLOT})\n")
    return "\n".join(parts)


def replace_section(text: str, content: str) -> str | None:
    """`text` with the part between the results markers replaced by `content` (None if the
    markers are absent)."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        return None
    return text[:start + len(START)] + "\n" + content.rstrip("\n") + "\n" + text[end:]


def main(argv: list[str] | None = None) -> str:
    """Render the results; replace the README section or print the markdown."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--results", default="benchmarks/results", help="folder of result JSON files")
    p.add_argument("--readme", help="file whose marked results section is replaced")
    args = p.parse_args(argv)
    markdown = render(Path(args.results))
    if args.readme:
        readme = Path(args.readme)
        updated = replace_section(readme.read_text(), markdown)
        if updated is not None:
            readme.write_text(updated)
            print(f"results section of {readme} updated")
            return markdown
        print(f"report: no {START} … {END} markers in {readme}; markdown follows",
              file=sys.stderr)
    print(markdown)
    return markdown


if __name__ == "__main__":
    main()
