"""One way to open a store: ``open_store`` picks the backend from the URL; the store package has no import circle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ordersync.store
from ordersync.errors import StoreError
from ordersync.store import Store, open_store

PACKAGE = "ordersync.store"


def package_modules() -> dict[str, Path]:
    """Every module of the store package by its dotted name (the package itself as ``ordersync.store``)."""
    root = Path(ordersync.store.__file__).parent
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join((PACKAGE, *parts))] = path
    return found


def imported(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its text: at the top, in a function (imported when
    it runs) or for type checking only; ``from package import module`` names the module."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[:len(package.split(".")) - node.level + 1], *filter(None, [base])])
            candidates = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in modules and candidate.startswith(PACKAGE + "."):
                candidate = candidate.rsplit(".", 1)[0]
            if candidate in modules:
                targets.add(candidate)
                break  # ``from x import module`` is an import of the module, not of x's own names
    targets.discard(name)
    return targets


def first_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of ``graph`` as the path around it, or None when it has none (a depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target):], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_no_module_of_the_store_imports_one_that_imports_it_back() -> None:
    modules = package_modules()
    graph = {name: imported(name, path, modules) for name, path in modules.items()}
    assert "ordersync.store.factory" in graph["ordersync.store"]  # the graph is read (the package opens stores)
    cycle = first_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_circle_through_several_modules() -> None:
    assert first_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert first_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_open_store_opens_the_backend_the_url_names(dest_url: str) -> None:
    store = open_store(dest_url)
    try:
        assert isinstance(store, Store)
        assert dest_url.startswith(store.scheme)
        assert store.count("orders") == 0
    finally:
        store.close()


def test_the_store_class_alone_opens_nothing_and_says_how(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"open_store\(url\)"):
        Store(f"sqlite:///{tmp_path / 'orders.db'}")


def test_an_unknown_scheme_is_one_line_naming_those_supported() -> None:
    with pytest.raises(StoreError, match=r"^destination url 'mysql://\.\.\.' is not supported: use one of sqlite"):
        open_store("mysql://me:hunter2@db/orders")
