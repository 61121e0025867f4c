"""The import graph runs one way, and the warehouse crosses into matching once per stage.

Every ``.py`` file of the product (``connectors``, ``schemas``, ``matching``, ``warehouse``, ``hub``,
``dags``, ``sandbox``) is parsed with :mod:`ast`; nothing is imported or run.

Imports: every ``import`` / ``from … import`` statement anywhere in a module (module level or
inside a function), relative ones resolved against the module's package, plus
``importlib.import_module("…")`` / ``__import__("…")`` called with a literal name. A module may
import the project packages its folder may (ARCHITECTURE.md):

* ``schemas`` nothing of the project; ``connectors``, ``matching`` and ``sandbox`` ``schemas``;
  ``warehouse`` ``matching`` and ``schemas``; ``hub`` and ``dags`` everything but ``dags`` and
  ``sandbox`` — except ``hub/demo.py``, which may import ``sandbox``;
* every package may import itself (``dags`` excepted: a DAG file imports no other).

Once per stage: for each public function of ``warehouse/`` (module-level, or a method of a public
class; name without a leading underscore) the *call sites* into ``matching`` it can reach are
counted: calls whose callee is a name imported from ``matching`` (``f(…)``, ``mod.f(…)``,
``Class(…)``), in its own body and, transitively, in the bodies of the ``warehouse`` functions it
calls by name (same module, or imported from another ``warehouse`` module). A site is counted
once however often it runs (in a loop) or however many paths reach it; method calls on values
``matching`` returned (``release.tables()``) are not crossings and are not counted. At most one.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("connectors", "schemas", "matching", "warehouse", "hub", "dags", "sandbox")
EVERYTHING = {"connectors", "schemas", "matching", "warehouse", "hub"}
ALLOWED: dict[str, set[str]] = {
    "schemas": {"schemas"},
    "connectors": {"connectors", "schemas"},
    "matching": {"matching", "schemas"},
    "sandbox": {"sandbox", "schemas"},
    "warehouse": {"warehouse", "matching", "schemas"},
    "hub": EVERYTHING,
    "dags": EVERYTHING,
}
EXCEPTIONS = {"hub/demo.py": {"sandbox"}}  # the demo builds the sandbox's silos


def _modules() -> Iterator[Path]:
    for package in PRODUCT:
        yield from sorted((ROOT / package).rglob("*.py"))


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, imported module) of every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _name(path) if path.name == "__init__.py" else _name(path).rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                yield node.lineno, ".".join([*base, *([node.module] if node.module else [])])
            else:
                yield node.lineno, node.module or ""
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Name) and node.func.id == "__import__")
                   or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module"))):
            yield node.lineno, node.args[0].value


def _offences() -> list[str]:
    out = []
    for path in _modules():
        rel = path.relative_to(ROOT).as_posix()
        package = rel.split("/")[0]
        allowed = ALLOWED[package] | EXCEPTIONS.get(rel, set())
        for line, module in _imports(path):
            top = module.split(".")[0]
            if top in PRODUCT and top not in allowed:
                out.append(f"{rel}:{line} imports {module} ({package} may import {', '.join(sorted(allowed))})")
    return out


def test_the_import_graph_runs_one_way() -> None:
    offences = _offences()
    assert not offences, "imports against the architecture:\n" + "\n".join(offences)


# ------------------------------------------------------------------------------------------ once per stage
@dataclass
class _Function:
    module: str
    name: str
    node: ast.FunctionDef | ast.AsyncFunctionDef
    matching_sites: set[tuple[str, int]] = field(default_factory=set)
    calls: set[tuple[str, str]] = field(default_factory=set)  # (module, function) within warehouse


def _bindings(tree: ast.Module | ast.FunctionDef | ast.AsyncFunctionDef, module: str
              ) -> dict[str, tuple[str, str | None]]:
    """Local name -> (module, attribute or None for a module) of every import directly in ``tree``'s body
    (functions: their own imports too, wherever in the body)."""
    out: dict[str, tuple[str, str | None]] = {}
    nodes = ast.walk(tree) if not isinstance(tree, ast.Module) else iter(tree.body)
    for node in nodes:
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    out[a.asname] = (a.name, None)
                else:
                    out[a.name.split(".")[0]] = (a.name.split(".")[0], None)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                out[a.asname or a.name] = (node.module, a.name)
    return out


def _resolve(func: ast.expr, names: dict[str, tuple[str, str | None]]) -> tuple[str, str] | None:
    """(module, attribute) a call's callee names through the imports, None when not an imported name."""
    chain = []
    while isinstance(func, ast.Attribute):
        chain.append(func.attr)
        func = func.value
    if not isinstance(func, ast.Name) or func.id not in names:
        return None
    module, attr = names[func.id]
    path = [*([attr] if attr else []), *reversed(chain)]
    if attr is None and chain:  # `import matching.release` then `matching.release.f()`
        return ".".join([module, *list(reversed(chain))[:-1]]), path[-1]
    return module, path[-1] if path else ""


@cache
def _warehouse_functions() -> dict[tuple[str, str], _Function]:
    functions: dict[tuple[str, str], _Function] = {}
    for path in sorted((ROOT / "warehouse").rglob("*.py")):
        module = _name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        top = _bindings(tree, module)
        local = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
        defs: list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]] = []
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                defs.append((node.name, node))
            elif isinstance(node, ast.ClassDef):
                defs += [(f"{node.name}.{m.name}", m) for m in node.body
                         if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)]
        for name, node in defs:
            fn = _Function(module, name, node)
            names = {**top, **_bindings(node, module)}
            for call in (c for c in ast.walk(node) if isinstance(c, ast.Call)):
                if isinstance(call.func, ast.Name) and call.func.id in local and call.func.id not in names:
                    fn.calls.add((module, call.func.id))
                    continue
                target = _resolve(call.func, names)
                if target is None:
                    continue
                if target[0].split(".")[0] == "matching":
                    fn.matching_sites.add((module, call.lineno))
                elif target[0].split(".")[0] == "warehouse":
                    fn.calls.add(target)
            functions[(module, name)] = fn
    return functions


def _reachable_sites(functions: dict[tuple[str, str], _Function], start: tuple[str, str]) -> set[tuple[str, int]]:
    seen, todo, sites = {start}, [start], set()
    while todo:
        fn = functions[todo.pop()]
        sites |= fn.matching_sites
        for callee in fn.calls:
            if callee in functions and callee not in seen:
                seen.add(callee)
                todo.append(callee)
    return sites


def _public(name: str) -> bool:
    return not any(part.startswith("_") for part in name.split("."))


def test_the_counter_sees_calls_into_matching() -> None:
    """The rule below is not vacuous: it finds the stage crossings there are."""
    functions = _warehouse_functions()
    assert _reachable_sites(functions, ("warehouse.resolution", "read_inputs"))  # ResolutionInputs(...)
    assert _reachable_sites(functions, ("warehouse.decisions", "record_decision"))  # checked(...)
    # through another warehouse function: a rectification rebuilds the citizen by survivorship
    assert _reachable_sites(functions, ("warehouse.gdpr_rights", "rectify")) == _reachable_sites(
        functions, ("warehouse.gdpr_rights", "refresh_citizen"))


_PUBLIC = sorted(key for key in _warehouse_functions() if _public(key[1]))


@pytest.mark.parametrize(("module", "name"), _PUBLIC, ids=[f"{m}.{n}" for m, n in _PUBLIC])
def test_a_warehouse_function_calls_into_matching_once_per_stage(module: str, name: str) -> None:
    sites = _reachable_sites(_warehouse_functions(), (module, name))
    assert len(sites) <= 1, f"{module}.{name} calls into matching at {len(sites)} places: " + ", ".join(
        f"{m}:{line}" for m, line in sorted(sites))
