"""The package's shape: the module-level import graph of ``nims`` has no cycle."""

from __future__ import annotations

import ast

from tests.conftest import REPO


def module_name(path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict:
    """Module -> the ``nims`` modules it imports at module level (imports inside functions are
    deferred on purpose and do not count); ``from package import name`` counts as importing
    the submodule when ``name`` is one."""
    files = {module_name(path): path for path in (REPO / "nims").rglob("*.py")}
    graph = {}
    for name, path in files.items():
        imported = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for alias in node.names:
                    submodule = f"{node.module}.{alias.name}"
                    imported.add(submodule if submodule in files else node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
        graph[name] = {module for module in imported if module in files and module != name}
    return graph


def cycle(graph: dict):
    """One import cycle as a list of modules, or None."""
    state = {}

    def visit(module, path):
        state[module] = "open"
        for imported in sorted(graph[module]):
            if state.get(imported) == "open":
                return path[path.index(imported) :] + [imported]
            if imported not in state:
                found = visit(imported, path + [imported])
                if found:
                    return found
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state:
            found = visit(module, [module])
            if found:
                return found
    return None


def test_the_import_graph_finds_a_cycle_when_there_is_one():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_nims_has_no_import_cycle():
    graph = import_graph()
    assert "nims.step2.base" in graph["nims.step2.hierarchical"]
    assert cycle(graph) is None, " -> ".join(cycle(graph))
