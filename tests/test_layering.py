"""Import layering of the library, read from the source with ``ast`` (nothing is imported).

Every import statement counts, at module level or inside a function: a lazy import still runs
once called, and still closes a cycle. ``from pkg import name`` depends on the module
``pkg.name`` when there is one, else on ``pkg`` itself.

The rules (DESIGN.md): no import cycle between library modules; data flows one way, so nothing
in ``modernbert_jax`` imports ``gliner_jax`` or ``setfit_jax``; model code, and everything it
imports, imports neither TFDS nor torch; no module edits ``sys.path``.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("modernbert_jax", "gliner_jax", "setfit_jax", "finetune_jax")
DOWNSTREAM = ("gliner_jax", "setfit_jax", "finetune_jax")
MODEL_CODE = ("modernbert_jax.model", "modernbert_jax.layers", "modernbert_jax.attention", "modernbert_jax.kernels",
              "modernbert_jax.rope", "modernbert_jax.precision", "modernbert_jax.dropout")
NOT_IN_MODEL_CODE = ("tensorflow_datasets", "torch")
# Every directory of Python code in the repository (the sys.path rule is not only the library's).
SOURCE_DIRS = (*PACKAGES, "configs", "experiments", "tests")


def find_modules(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file under ``root/<package>``."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imports(name: str, path: Path) -> list[tuple[str, str | None]]:
    """``(module, imported name)`` for each import in the file; the name is None for ``import module``."""
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend((alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: up from this module's package
                package = name.split(".")
                package = package[: len(package) - (node.level - 1) - (0 if is_package else 1)]
                base = ".".join([*package, base] if base else package)
            found.extend((base, alias.name) for alias in node.names)
    return found


def dependency_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the library modules it imports (itself excluded)."""
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for module, imported in imports(name, path):
            if imported is not None and f"{module}.{imported}" in modules:
                targets.add(f"{module}.{imported}")
                continue
            # `import a.b.c` (or `from a.b.c import f`) runs a.b.c: take the longest library prefix.
            parts = module.split(".")
            for n in range(len(parts), 0, -1):
                if ".".join(parts[:n]) in modules:
                    targets.add(".".join(parts[:n]))
                    break
        graph[name] = targets - {name}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One path ``[a, b, ..., a]`` per back edge of a depth-first search (empty iff acyclic)."""
    cycles, state, stack = [], {}, []  # state: 1 = on the current path, 2 = finished

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def import_path(graph: dict[str, set[str]], start: str, goal: str) -> list[str]:
    """A shortest import chain from ``start`` to ``goal``, which must be reachable (breadth first)."""
    parents: dict[str, str | None] = {start: None}
    frontier = [start]
    while goal not in parents:
        next_frontier = []
        for node in frontier:
            for nxt in sorted(graph[node]):
                if nxt not in parents:
                    parents[nxt] = node
                    next_frontier.append(nxt)
        frontier = next_frontier
    chain = [goal]
    while parents[chain[-1]] is not None:
        chain.append(parents[chain[-1]])
    return chain[::-1]


def sys_path_edits(path: Path) -> list[str]:
    """Edits in a file of this repository: ``sys.path.<method>(...)``, ``sys.path = ...``,
    ``sys.path[...] = ...`` and ``site.addsitedir(...)``."""
    edits = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Call):
            func = ast.unparse(node.func)
            edited = func.startswith("sys.path.") or func.endswith("addsitedir")
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            edited = any(ast.unparse(t).startswith("sys.path") for t in targets)
        else:
            continue
        if edited:
            edits.append(f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(node)[:80]}")
    return edits


def _top_level(module: str) -> str:
    return module.split(".")[0]


def test_no_import_cycle_between_library_modules():
    cycles = find_cycles(dependency_graph(find_modules(REPO, PACKAGES)))
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_modernbert_jax_does_not_import_gliner_or_setfit():
    modules = find_modules(REPO, PACKAGES)
    bad = [f"{name} imports {module}" for name, path in modules.items() if name.startswith("modernbert_jax")
           for module, _ in imports(name, path) if _top_level(module) in DOWNSTREAM]
    assert not bad, bad


def test_model_code_reaches_neither_tfds_nor_torch():
    modules = find_modules(REPO, PACKAGES)
    graph = dependency_graph(modules)
    assert set(MODEL_CODE) <= set(modules), "a model-code module was renamed: update MODEL_CODE"
    roots = [m for m in modules if any(m == r or m.startswith(r + ".") for r in MODEL_CODE)]
    bad = []
    for root in roots:
        reached, todo = set(), [root]
        while todo:  # every library module that `root` runs, on import or when called
            node = todo.pop()
            if node not in reached:
                reached.add(node)
                todo.extend(graph[node])
        for node in sorted(reached):
            for module, _ in imports(node, modules[node]):
                if _top_level(module) in NOT_IN_MODEL_CODE:
                    bad.append(" -> ".join(import_path(graph, root, node)) + f" imports {module}")
    assert not bad, "\n".join(sorted(set(bad)))


def test_no_module_edits_sys_path():
    """Installed packages and ``python -m`` make every import resolve; a path edit would hide a broken one."""
    modules = find_modules(REPO, SOURCE_DIRS)
    assert {_top_level(name) for name in modules} == set(SOURCE_DIRS)
    bad = [edit for path in modules.values() for edit in sys_path_edits(path)]
    assert not bad, bad


def test_checker_sees_function_level_and_relative_imports(tmp_path):
    """The rules above are only as good as the parser: a lazy, relative import cycle is found."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from .b import g\n")
    (pkg / "a.py").write_text("import os\n\ndef f():\n    from pkg.sub import b\n    return b\n")
    (pkg / "sub" / "b.py").write_text("def g():\n    from .. import a\n    return a\n")
    graph = dependency_graph(find_modules(tmp_path, ("pkg",)))
    assert graph == {"pkg": set(), "pkg.sub": {"pkg.sub.b"}, "pkg.a": {"pkg.sub.b"}, "pkg.sub.b": {"pkg.a"}}
    assert find_cycles(graph) == [["pkg.a", "pkg.sub.b", "pkg.a"]]
    assert import_path(graph, "pkg.sub", "pkg.a") == ["pkg.sub", "pkg.sub.b", "pkg.a"]
