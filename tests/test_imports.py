"""The package's modules import each other without cycles, and each imports in dependency order.

The module graph is read from the source with ``ast``: every ``import`` statement counts, also the
ones inside functions (a cycle hidden in a function is still a cycle). Importing ``a.b.c`` also
runs ``a`` and ``a.b`` first, so those count too, except the importer's own parent packages (they
are already being imported). Lazy imports of other libraries (torch, spaCy, sklearn) are not
edges of this graph and stay allowed.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import rupture_nlp

PACKAGE_DIR = Path(rupture_nlp.__file__).resolve().parent
PACKAGE = PACKAGE_DIR.name


def package_modules() -> dict[str, tuple[Path, bool]]:
    """Module name -> (source file, is a package ``__init__``) for every module of the package."""
    mods = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        mods[".".join(parts)] = (path, is_pkg)
    return mods


def _imported_names(module: str, is_pkg: bool, node: ast.AST, known: set[str]) -> set[str]:
    """Absolute names of the package's modules one import statement names."""
    if isinstance(node, ast.Import):
        return {a.name for a in node.names}
    assert isinstance(node, ast.ImportFrom)
    if node.level:
        base = module.split(".") if is_pkg else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    names = {target}
    names |= {f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known}  # from pkg import submodule
    return names


def module_graph() -> dict[str, set[str]]:
    """Module -> the package modules importing it runs first (see the module docstring)."""
    mods = package_modules()
    known = set(mods)
    graph: dict[str, set[str]] = {}
    for module, (path, is_pkg) in mods.items():
        own_parents = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for name in _imported_names(module, is_pkg, node, known):
                if name != PACKAGE and not name.startswith(PACKAGE + "."):
                    continue
                while name not in known:  # an attribute of a module (``from .x import f``)
                    name = name.rsplit(".", 1)[0]
                parts = name.split(".")
                deps |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
        graph[module] = deps - own_parents - {module}
    return graph


def import_order() -> list[str]:
    """Every module of the package, each after the modules it imports; CycleError if there is none."""
    return list(TopologicalSorter(module_graph()).static_order())


def test_module_graph_has_no_cycles():
    try:
        import_order()
    except CycleError as e:
        cycle = e.args[1]
        raise AssertionError("import cycle: " + " -> ".join(cycle)) from None


def test_graph_sees_imports_inside_functions():
    graph = module_graph()
    assert f"{PACKAGE}.segment" in graph[f"{PACKAGE}.ingest"]  # imported inside functions only
    assert f"{PACKAGE}.model" in graph[f"{PACKAGE}.tagging"]  # ``from .model.base import ...`` runs model/__init__


def test_every_module_imports_in_dependency_order_in_a_fresh_interpreter():
    try:
        order = import_order()
    except CycleError:
        order = sorted(package_modules())  # still check that each module imports (the cycle test fails)
    code = (
        "import importlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as e:\n"
        "        print(f'{name}: {type(e).__name__}: {e}')\n"
        "        raise SystemExit(1)\n"
    )
    r = subprocess.run([sys.executable, "-c", code, *order], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]


def test_no_module_over_500_lines_without_a_reason_at_its_top():
    """A module longer than ~500 lines says why near its top ("Over 500 lines because ...")."""
    long = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > 520 and "over 500 lines because" not in text[:3000].lower():
            long.append(f"{path.relative_to(PACKAGE_DIR.parent)}: {text.count(chr(10))} lines")
    assert not long, long
