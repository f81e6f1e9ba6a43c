"""The layout's rules, read from the source with ``ast`` so that they stay true.

Layers, top to bottom (docs/architecture.md): the public face (``fftconv``,
``cli``, ``testing``) → ``_ops`` → ``_tiling`` → ``_planning`` → ``_methods`` →
``_registry`` → ``_core`` → ``_infra``; ``_io`` beside them, on ``_core`` and
``_infra`` only; the plugins in ``backends/`` (``fftconv.backends``) on the
public package and the plugin contract.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("dask", "distributed", "zarr", "tifffile", "cv2", "imagecodecs", "scipy", "pyfftw")

# What each folder may import from (besides itself).  "public" is the top-level package.
BELOW = {
    "_infra": set(),
    "_core": {"_infra"},
    "_io": {"_core", "_infra"},
    "_registry": {"_core", "_infra"},
    "_methods": {"_registry", "_core", "_infra"},
    "_planning": {"_methods", "_registry", "_core", "_infra"},
    "_tiling": {"_planning", "_methods", "_registry", "_core", "_io", "_infra"},
    "_ops": {"_tiling", "_planning", "_methods", "_registry", "_core", "_io", "_infra"},
    "public": {"_ops", "_tiling", "_planning", "_methods", "_registry", "_core", "_io", "_infra",
               "backends"},
    "backends": {"public", "_registry", "_infra"},
}


def _modules() -> dict[str, Path]:
    """Dotted name -> path, for fftconv/ and backends/ (packaged as fftconv.backends)."""
    found = {}
    for folder, package in (("fftconv", "fftconv"), ("backends", "fftconv.backends")):
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _folder(module: str) -> str:
    """The layer a module belongs to."""
    parts = module.split(".")
    if parts[1:2] == ["backends"]:
        return "backends"
    if len(parts) > 1 and parts[1] in BELOW and MODULES[module].parent.name == parts[1]:
        return parts[1]
    if len(parts) > 1 and parts[1] in BELOW:
        return parts[1]
    return "public"


@functools.cache
def _imports(module: str) -> list[tuple[str, str, bool]]:
    """(imported module, imported name, inside a function) for each fftconv import."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []

    def visit(node, nested: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = nested or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.ImportFrom):
                source = child.module or ""
                if child.level:
                    base = module.split(".") if path.name == "__init__.py" else \
                        module.split(".")[:-1]
                    source = ".".join([*base[:len(base) - child.level + 1], source])
                if source.startswith("fftconv"):
                    for alias in child.names:
                        full = f"{source}.{alias.name}"
                        target = full if full in MODULES else _resolve(source)
                        found.append((target, alias.name if target != full else "", nested))
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.startswith("fftconv"):
                        found.append((_resolve(alias.name), "", nested))
            visit(child, inner)

    visit(tree, False)
    return [(t, n, f) for t, n, f in found if t is not None and t != module]


def _top_level_imports(module: str) -> set[str]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


@functools.cache
def _heavy(module: str) -> bool:
    """Whether importing ``module`` loads dask, zarr, tifffile, OpenCV, scipy or pyFFTW."""
    if _top_level_imports(module) & set(HEAVY):
        return True
    return any(_heavy(target) for target, _, nested in _imports(module) if not nested
               and not target.startswith(module + "."))


def _edges(include_package_children: bool = False) -> dict[str, set[str]]:
    edges = {m: set() for m in MODULES}
    for module in MODULES:
        for target, _, _ in _imports(module):
            # A package's __init__ importing its own modules is its interface, not a cycle.
            if not include_package_children and MODULES[module].name == "__init__.py" \
                    and target.startswith(module + "."):
                continue
            edges[module].add(target)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def connect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    return out


def test_the_rules_see_the_modules():
    assert len(MODULES) > 40
    assert any(nested for m in MODULES for _, _, nested in _imports(m))  # the walk goes deep


def test_no_import_cycle_counting_imports_inside_functions():
    assert _cycles(_edges()) == []


def test_the_cycle_check_finds_a_cycle():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(edges) == [["a", "b", "c"]]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_down_the_layers(module):
    layer = _folder(module)
    wrong = sorted({target for target, _, _ in _imports(module)
                    if _folder(target) != layer and _folder(target) not in BELOW[layer]})
    assert not wrong, f"{module} ({layer}) imports from a layer above it or beside it: {wrong}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_underscore_name_taken_from_another_folder(module):
    here = MODULES[module].parent
    taken = sorted(f"{name} from {target}" for target, name, _ in _imports(module)
                   if name.startswith("_") and not name.startswith("__")
                   and MODULES[target].parent != here
                   and not (MODULES[target].name == "__init__.py"
                            and MODULES[target].parent.parent == here))
    assert not taken, f"{module} takes another folder's private names: {taken}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_a_function_level_import_only_keeps_a_heavy_library_out(module):
    """Inside a function, an fftconv import is for a module that loads dask, zarr, tifffile,
    OpenCV, scipy or pyFFTW at import (``import fftconv`` stays light), never for a cycle."""
    light = sorted({target for target, _, nested in _imports(module)
                    if nested and not _heavy(target)})
    assert not light, f"{module} imports inside a function what could be imported at the top: " \
                      f"{light}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_the_tiling_layer_is_used_through_its_interface(module):
    """Outside ``_tiling``, what tiling offers is taken from ``fftconv._tiling`` itself."""
    if _folder(module) == "_tiling":
        return
    inner = sorted({target for target, _, _ in _imports(module)
                    if target.startswith("fftconv._tiling.")})
    assert not inner, f"{module} reaches into the tiling layer's modules: {inner}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_over_600_lines(module):
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert lines <= 600, f"{module} has {lines} lines"


def test_the_tree_shows_its_layers():
    top = [p for p in (ROOT / "fftconv").glob("*.py")]
    packages = [p for p in (ROOT / "fftconv").iterdir() if (p / "__init__.py").exists()]
    assert len(top) <= 12 and len(packages) >= 4
    assert {p.name for p in packages} >= set(BELOW) - {"public", "backends"}


def test_one_list_of_method_names():
    from fftconv._core.request import GENERAL_METHODS, METHOD_NAMES
    from fftconv._methods import RUNNERS

    assert tuple(RUNNERS) == GENERAL_METHODS and METHOD_NAMES == ("auto", *GENERAL_METHODS)


CACHE_DECORATORS = ("lru_cache", "cache")


@pytest.mark.parametrize("module", sorted(MODULES))
def test_caches_are_the_one_cache_class(module):
    """No module-level functools cache or hand-written LRU: every cache is an
    ``fftconv._infra.cache.Cache``, which ``fftconv.clear_caches()`` empties.  The backend
    registry's discovery is the exception: ``refresh_backends()`` clears it."""
    if module in ("fftconv._infra.cache", "fftconv._registry.discovery"):
        return
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "OrderedDict":
            found.append(f"OrderedDict at line {node.lineno}")
    for node in tree.body:
        for fn in (node.body if isinstance(node, ast.ClassDef) else [node]):
            for deco in getattr(fn, "decorator_list", []):
                target = deco.func if isinstance(deco, ast.Call) else deco
                if isinstance(target, ast.Attribute) and target.attr in CACHE_DECORATORS:
                    found.append(f"functools.{target.attr} on {fn.name}")
    assert not found, f"{module}: {found}"
