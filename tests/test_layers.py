"""The package's layers: data flows one way, and no module imports a layer above its own.

dataset -> selection -> checkpoints -> evaluation -> report, with the grid runner, the stage
functions, the Python API and the CLI on top. Every import counts, also the ones made inside
functions (lazy imports keep start-up light but are dependencies all the same); only imports
for type checking (under ``if TYPE_CHECKING:``) are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import als4gan

PACKAGE = Path(als4gan.__file__).parent

#: Layer of each module, lowest first; a module belongs to the longest prefix listed.
LAYERS: list[tuple[str, ...]] = [
    # foundations: errors, files, numbers, process set-up, typed configs
    (
        "errors",
        "io",
        "ratios",
        "progress",
        "argtypes",
        "runtime",
        "runlock",
        "config",
        "datapaths",
        "distributed",
        "stats",
        "__version__",
    ),
    ("data",),  # datasets, pixel scaling, tiling
    ("draw", "metrics", "inference"),  # drawing, confusion matrices, sliding windows
    ("models",),
    ("checkpoint", "regime"),
    ("active", "train"),  # selection and training
    ("evalsetup", "evalexamples", "tiles", "rasters"),
    ("evaluate", "predict"),
    ("experiment.spec", "experiment.results"),  # a grid's cells and their summaries
    ("report",),  # reads run folders only
    ("stages",),  # one function per stage: locks, resume, status
    ("experiment", "timing"),  # the grid runner, over the stage functions, and its timer
    ("stages.run", "api", ""),  # the public API (``als4gan`` itself re-exports it lazily)
    ("commands", "cli", "__main__"),
]


def layer_of(module: str) -> int:
    """Index in :data:`LAYERS` of ``module`` (relative to the package: ``active.loop``)."""
    best, best_len = None, -1
    for index, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".") or name == "") and len(
                name
            ) > best_len:
                best, best_len = index, len(name)
    assert best is not None, module
    return best


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, module)`` of every ``als4gan`` import outside ``if TYPE_CHECKING:`` blocks."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(child) for stmt in node.body for child in ast.walk(stmt)}
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "als4gan":
                found += [(node.lineno, alias.name) for alias in node.names]
            elif node.module.startswith("als4gan."):
                found.append((node.lineno, node.module.removeprefix("als4gan.")))
        elif isinstance(node, ast.Import):
            found += [
                (node.lineno, alias.name.removeprefix("als4gan."))
                for alias in node.names
                if alias.name.startswith("als4gan.")
            ]
    return found


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def test_no_module_imports_a_higher_layer() -> None:
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = module_name(path)
        for line, target in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if layer_of(target) > layer_of(source):
                upward.append(f"{source}:{line} imports {target}")
    assert not upward, "\n".join(upward)


def test_every_module_has_a_layer() -> None:
    for path in PACKAGE.rglob("*.py"):
        layer_of(module_name(path))


def test_the_report_sits_above_evaluation_and_below_the_runner() -> None:
    assert layer_of("evaluate") < layer_of("report") < layer_of("experiment.runner")
    assert layer_of("draw.plots") < layer_of("evaluate")
    assert layer_of("active.loop") < layer_of("report")
