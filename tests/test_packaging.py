"""Packaging: hinas installs next to other tools (no upper bound on torch)."""

import re
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_torch_has_a_floor_and_no_cap():
    (torch,) = re.findall(r'^\s*"(torch\b[^"]*)"', PYPROJECT.read_text(), re.MULTILINE)
    assert ">=" in torch and not re.search(r"<|==|~=|!=", torch), torch
