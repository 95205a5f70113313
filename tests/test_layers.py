"""The package's layers (docs/architecture.md): every module imports only from its own layer or
the ones below it, no job imports another job, and the config is usable without torch; the
benchmark scripts import few of the library's names, none of the training or search loop's
internals."""

import ast
from pathlib import Path

import pytest

import hinas

PACKAGE = Path(hinas.__file__).parent
BENCHMARKS = Path(__file__).parents[1] / "benchmarks"
LAYERS = ["foundation", "measures", "data", "space", "models", "runtime", "jobs", "apps"]
FOUNDATION = {"config", "tasks", "errors", "registry", "io"}
APPS = {"cli", "cli_options", "demo", "__main__", "__init__"}
MAX_BENCHMARK_NAMES = 35
"""The most distinct hinas names (module, name) the benchmark scripts may import together."""
LOOP_INTERNALS = {"IterationBatches", "build_optimizer", "lr_factor", "optimisation_step",
                  "search_step"}
"""The pieces of the training and search loops: a benchmark times a loop through its job's
functions (`time_training`, `time_search_steps`), never by rebuilding it from these."""


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


def imported_names(path: Path) -> set[tuple[str, str]]:
    """The hinas names `path` imports, at its top or inside functions: (module, name), the name
    `*` for a module imported whole (`import hinas`)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "hinas":
                names.update((node.module, a.name) for a in node.names)
        elif isinstance(node, ast.Import):
            names.update((a.name, "*") for a in node.names if a.name.split(".")[0] == "hinas")
    return names


def hinas_imports(path: Path) -> set[str]:
    """The hinas modules below the package that `path` imports (dotted paths below `hinas`)."""
    return {module.removeprefix("hinas.") for module, _ in imported_names(path)
            if module.startswith("hinas.")}


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


def test_benchmarks_import_few_library_names_and_no_loop_internals():
    names = set().union(*map(imported_names, BENCHMARKS.rglob("*.py")))
    assert len(names) <= MAX_BENCHMARK_NAMES, sorted(names)
    assert not {name for _, name in names} & LOOP_INTERNALS
