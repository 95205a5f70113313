"""The package's layers (docs/architecture.md): every module imports only from its own layer or
the ones below it, no job imports another job, and the config is usable without torch."""

import ast
from pathlib import Path

import pytest

import hinas

PACKAGE = Path(hinas.__file__).parent
LAYERS = ["foundation", "measures", "data", "space", "models", "runtime", "jobs", "apps"]
FOUNDATION = {"config", "tasks", "errors", "registry", "io"}
APPS = {"cli", "cli_options", "demo", "__main__", "__init__"}


def layer_of(module: str) -> str:
    """The layer of `hinas.<module>` (a dotted path below the package)."""
    top = module.split(".")[0]
    if top in FOUNDATION:
        return "foundation"
    if top in APPS:
        return "apps"
    assert top in LAYERS, f"hinas.{module} belongs to no layer"
    return top


def modules() -> dict[str, Path]:
    """Every module of the package, by its dotted path below `hinas`."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def hinas_imports(path: Path) -> set[str]:
    """The hinas modules `path` imports, at its top or inside functions."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("hinas."):
                names.add(node.module.removeprefix("hinas."))
        elif isinstance(node, ast.Import):
            names.update(a.name.removeprefix("hinas.") for a in node.names
                         if a.name.startswith("hinas."))
    return names


@pytest.mark.parametrize("module", sorted(modules()))
def test_imports_go_down_the_layers(module):
    mine = LAYERS.index(layer_of(module))
    for imported in hinas_imports(modules()[module]):
        theirs = LAYERS.index(layer_of(imported))
        assert theirs <= mine, f"hinas.{module} ({LAYERS[mine]}) imports hinas.{imported} " \
                               f"({LAYERS[theirs]})"
        if layer_of(module) == "jobs" and module != "jobs":
            assert layer_of(imported) != "jobs", f"job hinas.{module} imports hinas.{imported}"


def test_every_module_is_in_a_layer():
    assert {layer_of(m) for m in modules()} == set(LAYERS)
