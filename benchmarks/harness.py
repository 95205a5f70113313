"""What every benchmark script shares: the machine it measured on (device, load), the command
line that reproduces it, printing and saving the JSON, merging with an earlier run, and
measuring a mode in a process of its own."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def device(name: str = "cpu") -> str:
    """The device of a measurement in words (CPU model, cores and torch threads; GPU name)."""
    from hinas.runtime.execution import describe_device

    return describe_device(name)


def load_1min() -> float:
    """The machine's 1-minute load average now: timings mean something only on a quiet
    machine, so every benchmark records it beside them."""
    return round(os.getloadavg()[0], 2)


def portable(arg: str) -> str:
    """`arg`, made relative to the repository root (where the scripts run from) if it is an
    absolute path: results must not hold the paths of the machine that made them."""
    return os.path.relpath(arg, REPO) if os.path.isabs(arg) else arg


def command_line(script_file: str, argv: list[str] | None) -> str:
    """The shell command that runs benchmark `script_file` with `argv` (None: this process's),
    paths relative to the repository root."""
    args = sys.argv[1:] if argv is None else list(argv)
    return shlex.join(["python", f"benchmarks/{Path(script_file).name}", *map(portable, args)])


def emit(summary: dict, json_path: str | None = None, extra: dict[str, str] | None = None) -> str:
    """Print `summary` as indented JSON; write it to `json_path` and each text of `extra`
    (path -> content) to its path, creating folders. Returns the JSON text."""
    text = json.dumps(summary, indent=2)
    print(text)
    outputs = {json_path: text + "\n", **(extra or {})}
    for path, content in outputs.items():
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(content)
    return text


def load_compatible(path: str, config: dict, keys: tuple[str, ...], script: str) -> dict:
    """The earlier summary at `path`, after checking that its config agrees with `config` on
    `keys` (SystemExit naming the first that differs)."""
    earlier = json.loads(Path(path).read_text())
    for key in keys:
        if earlier["config"].get(key) != config.get(key):
            raise SystemExit(f"{script}: {path}: another run ({key} "
                             f"{earlier['config'].get(key)!r} ≠ {config.get(key)!r})")
    return earlier


def joined_commands(earlier: dict, summary: dict) -> str:
    """The command lines of two merged summaries, in the order they ran."""
    return ", then ".join(c for c in (earlier.get("command"), summary.get("command")) if c)


def copy_state(folder: Path, target: Path, kept: tuple[str, ...] | list[str],
               needed: dict[str, bool]) -> None:
    """Copy a run folder's state into `target` (the committed copy): the files of `kept` that
    exist, and each file of `needed` whose flag says the run still needs it to continue; a file of
    `needed` no longer needed is deleted from `target`, so that only live checkpoints stay."""
    target.mkdir(parents=True, exist_ok=True)
    for name in [*kept, *(name for name, flag in needed.items() if flag)]:
        if (folder / name).exists():
            shutil.copy2(folder / name, target / name)
    for name, flag in needed.items():
        if not flag:
            (target / name).unlink(missing_ok=True)


def child_result(script_file: str, argv: list[str], mode: str, *extra: str,
                 timeout: float | None = None) -> dict:
    """The JSON that `script_file` prints on its last line when rerun with `argv`, `--_child mode`
    and `extra` in a fresh Python process (so that its peak RSS is its own); SystemExit with the
    end of its stderr if it fails, or saying so if it runs over `timeout` seconds."""
    try:
        out = subprocess.run([sys.executable, script_file, *argv, "--_child", mode, *extra],
                             capture_output=True, text=True, check=False, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"mode {mode} failed:\nran over its limit of {timeout:g} s") from None
    if out.returncode != 0:
        raise SystemExit(f"mode {mode} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
