"""No import cycles inside the minswin package.

The graph is built from the source with `ast`, so it sees every import: at module level and
inside functions alike. An import moved into a function still makes an edge, because such an
import used only to dodge a cycle hides the tangle instead of removing it.
"""
import ast
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "minswin"


def module_name(path: Path, root: Path) -> str:
    """minswin/exercises/catalog.py -> "minswin.exercises.catalog"; an __init__ -> its package."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules(root: Path = PACKAGE_ROOT) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def resolve_relative(importer: str, is_package: bool, level: int, module: str | None) -> str:
    """`from ..x import y` written in `importer` -> the absolute module it names."""
    base = importer.split(".")
    if not is_package:
        base = base[:-1]                               # a module's own package is its parent
    if level > 1:
        base = base[:len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def imported_modules(path: Path, importer: str, known: set[str]) -> set[str]:
    """Every minswin module `path` imports, anywhere in the file."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = (resolve_relative(importer, is_package, node.level, node.module)
                      if node.level else node.module or "")
            # `from pkg import sub` imports the submodule pkg.sub when there is one
            names = [f"{target}.{a.name}" if f"{target}.{a.name}" in known else target
                     for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:          # a.b.c -> the longest known prefix
                name = name.rpartition(".")[0]
            if name and name != importer:
                found.add(name)
    return found


def import_graph(root: Path = PACKAGE_ROOT) -> dict[str, set[str]]:
    modules = package_modules(root)
    known = set(modules)
    # only written imports count: importing a.b.c also runs a/__init__ first, but that edge is
    # implied by the layout, not a choice a file makes
    return {name: imported_modules(path, name, known) for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each as a cycle."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [one_cycle(graph, set(c)) for c in components]


def one_cycle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A concrete path a -> b -> ... -> a inside one strongly connected component."""
    start = min(component)
    path, seen = [start], {start}
    parents = {start: None}
    queue = [start]
    while queue:                                       # breadth-first back to start
        v = queue.pop(0)
        for w in sorted(graph[v] & component):
            if w == start:
                path = [v]
                while parents[path[-1]] is not None:
                    path.append(parents[path[-1]])
                return list(reversed(path)) + [start]
            if w not in seen:
                seen.add(w)
                parents[w] = v
                queue.append(w)
    return sorted(component)


def test_the_graph_sees_relative_and_function_level_imports(tmp_path):
    pkg = tmp_path / "minswin"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..a import x\n")
    graph = import_graph(pkg)
    assert graph["minswin.a"] == {"minswin.sub.b"}
    assert graph["minswin.sub.b"] == {"minswin.a"}
    assert find_cycles(graph) == [["minswin.a", "minswin.sub.b", "minswin.a"]]


# Cycles not yet removed, each with why. model.py's create_model/model_from_config builds a V2
# model too, and model_v2.py subclasses model.py's classes; moving the factory out would break
# `from minswin.model import create_model` (README, tutorials, tests), a public name that must
# keep working, and a registry filled by model_v2 on import would need model_v2 imported first.
KNOWN_CYCLES = {frozenset({"minswin.model", "minswin.model_v2"})}


def test_minswin_has_no_import_cycles():
    cycles = [c for c in find_cycles(import_graph()) if frozenset(c) not in KNOWN_CYCLES]
    assert not cycles, "import cycles in minswin (an import inside a function counts too):\n" + \
        "\n".join("  " + " -> ".join(c) for c in cycles)
