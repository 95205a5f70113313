"""Peak memory of `hinas restore` on a very large image, tiled and whole.

Writes a `--size`×`--size` gray PNG (a smooth gradient with a fine checkerboard: compresses to a
few hundred KB, decodes to size² bytes), builds a model folder from `--genotype` (default: the
committed CPU denoising genotype, node widths × `--width-multiplier`, freshly initialised weights:
memory does not depend on the weights), and runs `hinas restore --tile --overlap` in a child
process whose peak RSS is read from the kernel (`getrusage(RUSAGE_CHILDREN)`). The whole-image
run (no `--tile`) is also tried: over the pixel limit it is refused before decoding, and the
JSON records the message. Prints (and with `--json` writes) JSON:

    {"benchmark": "restore_memory", "command", "config": {...}, "device", "load_average",
     "tiled": {"peak_rss_mb", "seconds", "output_bytes"}, "whole": {"refused": str} | {...},
     "budget_mb", "within_budget"}

Example: python benchmarks/restore_memory.py --json benchmarks/results/restore_memory.json
"""

from __future__ import annotations

import argparse
import os
import resource
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

if not __package__:  # run as a file, `python benchmarks/NAME.py`: the package made importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import command_line, device, emit, load_1min, portable  # noqa: E402

DEFAULT_GENOTYPE = Path(__file__).parent / "results" / "genotypes" / "denoise_sigma50_cpu.json"


def write_large_png(path: Path, side: int) -> None:
    """A side×side 8-bit gray PNG written row by row (never held whole in memory)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    z = zlib.compressobj(6)
    cols = bytes((16 * (x % 2)) for x in range(side))
    parts = []
    for y in range(side):
        base = 64 + (128 * y) // side
        parts.append(z.compress(b"\0" + bytes(base + c + 16 * (y % 2) for c in cols)
                                if y % 512 == 0 else b"\0" + bytes(base + c for c in cols)))
    data = b"".join(parts) + z.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def make_model(folder: Path, genotype_path: Path, multiplier: float) -> None:
    """A model folder (model.json, genotype.json, weights) for the genotype, untrained."""
    from hinas.models.folder import ModelSpec
    from hinas.space.genotype import Genotype

    genotype = Genotype.load(genotype_path)
    spec = ModelSpec("hinas", genotype.task, {"width_multiplier": multiplier}, genotype)
    folder.mkdir(parents=True, exist_ok=True)
    spec.save(folder, spec.build().eval())


def run_restore(image: Path, model: Path, out: Path, threads: int, *tiling: str) -> dict:
    """Run `hinas restore` in a child process: its peak RSS (MB), seconds, and its error line if
    it refused (the temporary folder written as WORK)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "hinas.cli", "restore", str(image), "--model",
                           str(model), "-o", str(out), "--quiet", *tiling],
                          capture_output=True, text=True, env=env, check=False)
    seconds = round(time.perf_counter() - start, 2)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    if proc.returncode == 2:
        error = proc.stderr.strip().splitlines()[-1]
        return {"refused": error.replace(str(image.parent), "WORK")}
    if proc.returncode != 0:
        raise SystemExit(f"restore failed:\n{proc.stderr[-2000:]}")
    return {"peak_rss_mb": round(peak, 1), "seconds": seconds,
            "output_bytes": (out / image.name).stat().st_size}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=12000, help="side of the square image (px)")
    p.add_argument("--genotype", type=Path, default=DEFAULT_GENOTYPE)
    p.add_argument("--width-multiplier", type=float, default=2.0)
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--overlap", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--budget-mb", type=float, default=1536.0,
                   help="the peak RSS the tiled run must stay under")
    p.add_argument("--json", metavar="PATH", help="also write the JSON here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; returns the summary that it prints."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        image = work / "large.png"
        write_large_png(image, args.size)
        make_model(work / "model", args.genotype, args.width_multiplier)
        tiled = run_restore(image, work / "model", work / "tiled", args.threads, "--tile",
                            str(args.tile), "--overlap", str(args.overlap))
        whole = run_restore(image, work / "model", work / "whole", args.threads)
    summary = {
        "benchmark": "restore_memory",
        "command": command_line(__file__, argv),
        "config": {"size": args.size, "genotype": portable(str(args.genotype)),
                   "width_multiplier": args.width_multiplier, "tile": args.tile,
                   "overlap": args.overlap, "threads": args.threads},
        "device": device("cpu"),
        "load_average": load_1min(),
        "tiled": tiled, "whole": whole, "budget_mb": args.budget_mb,
        "within_budget": "peak_rss_mb" in tiled and tiled["peak_rss_mb"] < args.budget_mb,
    }
    emit(summary, args.json)
    return summary


if __name__ == "__main__":
    main()
