"""Atomic file writing: every checkpoint, genotype, log and image is written to a temporary
file in the destination folder and renamed over the target, so an interrupted run never leaves
a torn file."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from hinas.errors import HinasError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside `path`; it replaces `path` on success, is removed on error.
    A failed write (read-only or full disk, `path` a folder, ...) is a HinasError naming `path`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix,
                                   dir=path.parent)
    except OSError as err:
        raise HinasError(f"{path}: cannot write ({err.strerror or err})") from None
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise HinasError(f"{path}: cannot write ({err.strerror or err})") from None
        raise


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write `path` atomically with `write(binary_file)`, flushed to disk before the rename."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def read_json(path: str | Path, what: str) -> Any:
    """The parsed content of JSON file `path` (a `what`, named in errors): HinasError naming the
    file for one that cannot be read, is not JSON, nests too deeply to parse, or holds an integer
    of more digits than Python converts."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise HinasError(f"{path}: cannot read {what} ({err.strerror})") from None
    except json.JSONDecodeError as err:
        raise HinasError(f"{path}: not valid JSON ({err.msg}, line {err.lineno})") from None
    except UnicodeDecodeError:
        raise HinasError(f"{path}: not valid JSON (not UTF-8 text)") from None
    except RecursionError:
        raise HinasError(f"{path}: not a {what} (JSON nested too deeply)") from None
    except ValueError:  # Python refuses to parse an integer of too many digits
        raise HinasError(f"{path}: not a {what} ({too_long_number()})") from None


def too_long_number() -> str:
    """What a parser's refusal of an integer over Python's digit limit means, in words."""
    return f"a number of more than {sys.get_int_max_str_digits()} digits"


def check_output_file(path: str | Path) -> None:
    """Raise HinasError unless `path` can name an output file (it is not a folder), so that a
    command fails before its work rather than after."""
    if Path(path).is_dir():
        raise HinasError(f"{path}: is a folder; give a file name")
