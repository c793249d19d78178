"""The house's floor plan, checked on the real import graph (grimp, import-linter's engine; every
import counts, those inside functions and under TYPE_CHECKING too):

- no import circle, between modules or between rooms (`tidings.<room>`);
- the floors, high to low: the CLI, the assembly of a process, its faces (API, console) and the
  worker, the service layer, publishing, the store. A floor never imports one above it, and
  the faces and the worker never import each other;
- the faces call the service layer; the service layer never imports FastAPI or Starlette;
- nothing outside the store imports a database driver.

A room a floor names that does not exist (yet) is left out of the check.
"""

from __future__ import annotations

import graphlib

import grimp
import pytest

PACKAGE = "tidings"
FLOORS: list[str | set[str]] = [
    "tidings.cli",
    "tidings.assembly",
    {"tidings.api", "tidings.console", "tidings.delivery", "tidings.health_port"},
    "tidings.services",
    "tidings.publishing",
    "tidings.store",
]
FACES = ("tidings.api", "tidings.console")
WEB_FRAMEWORKS = ("fastapi", "starlette")
DRIVERS = ("asyncpg", "aiosqlite", "psycopg", "psycopg2", "sqlite3")
# The receiver SDK keeps the integrator's own deduplication file (sqlite3); it is no part of
# the server and imports nothing of it (test_receiver.py checks that).
DRIVER_USERS = ("tidings.store", "tidings.receiver")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(PACKAGE, include_external_packages=True, cache_dir=None)


def _ours(graph: grimp.ImportGraph) -> list[str]:
    return sorted(m for m in graph.modules if m == PACKAGE or m.startswith(PACKAGE + "."))


def _room(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _circle(edges: dict[str, set[str]]) -> list[str] | None:
    try:
        graphlib.TopologicalSorter(edges).prepare()
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return None


def test_no_import_circle_between_modules(graph: grimp.ImportGraph) -> None:
    ours = set(_ours(graph))
    edges = {m: graph.find_modules_directly_imported_by(m) & ours for m in ours}
    assert _circle(edges) is None, f"import circle: {' -> '.join(_circle(edges) or [])}"


def test_no_import_circle_between_rooms(graph: grimp.ImportGraph) -> None:
    ours = set(_ours(graph))
    edges: dict[str, set[str]] = {}
    for module in ours:
        for imported in graph.find_modules_directly_imported_by(module) & ours:
            if _room(module) != _room(imported):
                edges.setdefault(_room(module), set()).add(_room(imported))
    assert _circle(edges) is None, f"rooms import in a circle: {' -> '.join(_circle(edges) or [])}"


def _present(graph: grimp.ImportGraph, floor: str | set[str]) -> str | set[str] | None:
    names = {floor} if isinstance(floor, str) else floor
    present = {n for n in names if n in graph.modules}
    if not present:
        return None
    return present.pop() if isinstance(floor, str) else present


def test_no_floor_imports_a_floor_above_it(graph: grimp.ImportGraph) -> None:
    floors = [f for f in (_present(graph, floor) for floor in FLOORS) if f is not None]
    illegal = graph.find_illegal_dependencies_for_layers(layers=floors)
    found = [
        f"{d.importer} -> {d.imported}: {sorted(r.heads)} -> {list(r.middle)} -> {sorted(r.tails)}"
        for d in illegal
        for r in d.routes
    ]
    assert not found, "imports against the floor plan:\n" + "\n".join(sorted(found))


def test_the_faces_call_the_service_layer(graph: grimp.ImportGraph) -> None:
    for face in FACES:
        if face in graph.modules:
            assert graph.direct_import_exists(
                importer=face, imported="tidings.services", as_packages=True
            ), face


@pytest.mark.parametrize("framework", WEB_FRAMEWORKS)
def test_the_service_layer_never_reaches_a_web_framework(
    graph: grimp.ImportGraph, framework: str
) -> None:
    chains = graph.find_shortest_chains(
        importer="tidings.services", imported=framework, as_packages=True
    )
    assert not chains, f"services reach {framework}: {chains}"


def test_nothing_above_the_store_imports_a_driver(graph: grimp.ImportGraph) -> None:
    found = [
        f"{module} imports {driver}"
        for module in _ours(graph)
        if not module.startswith(DRIVER_USERS)
        for driver in DRIVERS
        if driver in graph.modules and graph.direct_import_exists(importer=module, imported=driver)
    ]
    assert not found, found


def test_the_checks_see_a_circle_and_a_breach() -> None:
    """The checks above can fail: a graph with a circle and an upward import."""
    graph = grimp.ImportGraph()
    for name in ("tidings", "tidings.services", "tidings.api", "tidings.store"):
        graph.add_module(name)
    graph.add_import(importer="tidings.services", imported="tidings.api")
    graph.add_import(importer="tidings.api", imported="tidings.services")
    assert _circle({"a": {"b"}, "b": {"a"}}) is not None
    illegal = graph.find_illegal_dependencies_for_layers(
        layers=["tidings.api", "tidings.services", "tidings.store"]
    )
    assert {(d.importer, d.imported) for d in illegal} == {("tidings.services", "tidings.api")}
