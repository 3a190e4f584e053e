"""The project's imports go one way (README, *Layout*), checked on the code itself.

Every import of every module is read from its syntax tree, those inside functions
included (an import moved into a function still ties two modules), and resolved to the
project's modules; only imports for type annotations (under `if TYPE_CHECKING:`), which
never run, are left out. The graph must have no circle; each module imports only its own layer
and those before it; no view imports another view; the API never imports a management
command; an app imports only the apps before it (retention, loyalty, surveys, offers);
nothing of the project imports the gathering modules that exist for Django
(retention/models.py, retention/admin.py); and no module reaches into another's private
names.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ["retention", "loyalty", "surveys", "offers"]  # each may import only those before it

# The layers of `retention`, first to last: a module imports only its own layer and the
# layers before it. Matched by the longest prefix of the module's dotted name.
LAYERS = [
    ("leaf", ["retention", "retention.celery", "retention.settings", "retention.periods",
              "retention.money", "retention.permissions", "retention.pagination",
              "retention.admin_base", "retention.safetext", "retention.network",
              "retention.after_response", "retention.formatting",
              "retention.admin_site", "retention.routes"]),
    ("sales", ["retention.sales"]),
    ("mail", ["retention.mail"]),
    ("figures", ["retention.figures"]),
    ("value", ["retention.value"]),
    ("account", ["retention.account"]),
    ("nightly", ["retention.nightly"]),
    ("demo", ["retention.demo"]),
    ("entry", ["retention.views", "retention.api", "retention.management", "retention.tasks",
               "retention.urls", "retention.wsgi", "retention.apps", "retention.admin",
               "retention.templatetags",

               "retention.models"]),
]
# An area's admin is an entry point (a staff page), like the views: it may show any layer.
ENTRY_SUFFIXES = (".admin",)
GATHERERS = {"retention.models", "retention.admin"}
# The views' shared helpers; every other module of retention/views is a view.
VIEW_HELPERS = {"retention.views", "retention.views.access", "retention.views.choice"}


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int
    names: tuple[str, ...] = ()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_files() -> dict[str, Path]:
    files = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" not in path.parts:
                files[module_name(path)] = path
    return files


FILES = project_files()


def is_module(name: str) -> bool:
    return name in FILES


def resolved(node: ast.ImportFrom, name: str, path: Path) -> str:
    """The absolute module a `from … import` names (relative imports resolved)."""
    base = node.module or ""
    if node.level:
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        parent = package.split(".")
        parent = parent[: len(parent) - (node.level - 1)]
        base = ".".join(parent + ([base] if base else []))
    return base


def typing_only(tree: ast.Module) -> set[int]:
    """Lines of imports under `if TYPE_CHECKING:`, which never run (annotations only)."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING",
                                                                   "typing.TYPE_CHECKING"):
            lines |= {inner.lineno for stmt in node.body for inner in ast.walk(stmt)
                      if isinstance(inner, ast.Import | ast.ImportFrom)}
    return lines


def imports_of(name: str, path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(), filename=str(path))
    skipped = typing_only(tree)
    found = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in APPS:
                    found.append(Import(name, alias.name, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            base = resolved(node, name, path)
            if base.split(".")[0] not in APPS:
                continue
            plain = []
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if is_module(submodule):
                    found.append(Import(name, submodule, node.lineno))
                else:
                    plain.append(alias.name)
            if plain or not node.names:
                found.append(Import(name, base, node.lineno, tuple(plain)))
    return found


def parents(name: str) -> list[str]:
    """The packages Python imports before `name` (a.b.c needs a and a.b)."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts)) if is_module(".".join(parts[:i]))]


EDGES = [edge for name, path in FILES.items() for edge in imports_of(name, path)]


def layer_of(name: str) -> int | None:
    if name.split(".")[0] != "retention":
        return None
    if name.endswith(ENTRY_SUFFIXES):
        return len(LAYERS) - 1
    best, index = -1, None
    for position, (_label, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
                best, index = len(prefix), position
    return index


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def graph(*, with_parents: bool) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for edge in EDGES:
        if edge.target in FILES and edge.target != edge.source:
            edges[edge.source].add(edge.target)
            if with_parents:  # but not the module's own packages, which Python runs first
                own = set(parents(edge.source)) | {edge.source}
                edges[edge.source].update(p for p in parents(edge.target) if p not in own)
    return edges


def describe(edges) -> str:
    return "\n".join(f"{e.source} -> {e.target} (line {e.line})" for e in edges)


def test_the_graph_is_read():
    """The checks below read real imports (a guard against a walker that finds nothing)."""
    targets = {edge.target for edge in EDGES}
    assert {"retention.sales.models", "retention.figures.metrics", "retention.mail.outbox"} <= targets
    assert len(EDGES) > 250


def test_no_module_imports_itself_back_through_others():
    found = circles(graph(with_parents=True))
    assert not found, "import circles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_each_layer_imports_only_itself_and_the_layers_before_it():
    wrong = [edge for edge in EDGES
             if (source := layer_of(edge.source)) is not None
             and (target := layer_of(edge.target)) is not None and target > source]
    assert not wrong, "imports of a later layer:\n" + describe(wrong)


def test_every_retention_module_has_a_layer():
    assert [name for name in FILES if name.startswith("retention") and layer_of(name) is None] == []


def test_apps_import_only_the_apps_before_them():
    order = {app: position for position, app in enumerate(APPS)}
    wrong = [edge for edge in EDGES
             if order[edge.target.split(".")[0]] > order[edge.source.split(".")[0]]]
    assert not wrong, describe(wrong)


def test_nothing_imports_the_modules_that_gather_models_and_admin_for_django():
    wrong = [edge for edge in EDGES if edge.target in GATHERERS and edge.source != "retention.apps"]
    assert not wrong, describe(wrong)


def test_no_view_imports_another_view():
    def is_view(name):
        return name.startswith("retention.views.") and name not in VIEW_HELPERS

    wrong = [edge for edge in EDGES if is_view(edge.source) and is_view(edge.target)]
    assert not wrong, describe(wrong)


def test_the_api_never_imports_a_management_command():
    wrong = [edge for edge in EDGES if edge.source.startswith("retention.api")
             and edge.target.startswith("retention.management")]
    assert not wrong, describe(wrong)


def private_uses() -> list[str]:
    """`from module import _name`, or `module._name` on a project module bound by an import."""
    found = []
    for name, path in FILES.items():
        tree = ast.parse(path.read_text())
        bound = {}  # local name -> project module
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = resolved(node, name, path)
                if base.split(".")[0] not in APPS:
                    continue
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        found.append(f"{name}: from {base} import {alias.name}")
                    if is_module(f"{base}.{alias.name}"):
                        bound[alias.asname or alias.name] = f"{base}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname and is_module(alias.name):
                        bound[alias.asname] = alias.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in bound and node.attr.startswith("_")
                    and not node.attr.startswith("__") and bound[node.value.id] != name):
                found.append(f"{name}: {node.value.id}.{node.attr} (line {node.lineno})")
    return sorted(set(found))


def test_no_module_uses_another_modules_private_names():
    assert private_uses() == []


@pytest.mark.parametrize(("source", "target", "allowed"), [
    ("retention.figures.metrics", "retention.views.overview", False),  # a later layer
    ("retention.mail.outbox", "retention.sales.models", True),  # an earlier layer
    ("retention.sales.admin", "retention.value.models", True),  # an admin is an entry point
    ("retention.sales.models", "retention.mail.models", False),
])
def test_the_layer_rule_itself(source, target, allowed):
    assert (layer_of(target) <= layer_of(source)) is allowed


def test_circles_are_found():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
