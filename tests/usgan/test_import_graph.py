"""No import cycle among usgan's modules: every import counts, module-level or inside a function, relative or not.

A lazy import still runs the other module's top level when it fires, so a cycle through one is a cycle that waits
for a caller; imports of other packages (ray, face_recognition) are not edges here.
"""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "usgan"


def module_names(root: Path) -> dict[str, Path]:
    """Dotted name -> file of every module of the package under `root` (a package is its __init__.py)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that `name` imports anywhere in its file; `from P import X` means P.X where X is a module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in known else source for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:      # `import usgan.data.readers as r` names the module itself
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    names = module_names(root)
    return {name: imported_modules(name, path, set(names)) for name, path in names.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None; depth-first with an explicit path."""
    done, on_path = set(), []

    def visit(node):
        if node in on_path:
            return on_path[on_path.index(node):] + [node]
        if node in done:
            return None
        on_path.append(node)
        for nxt in sorted(graph[node]):
            cycle = visit(nxt)
            if cycle:
                return cycle
        on_path.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start)
        if cycle:
            return cycle
    return None


def test_usgan_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 40 and "usgan.data.readers" in graph
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle among usgan modules: " + " -> ".join(cycle)


def test_the_graph_sees_lazy_relative_and_package_imports():
    graph = import_graph()
    assert "usgan.training_loop" in graph["usgan.launch"]            # inside run_training, `from .training_loop ...`
    assert "usgan.errors" in graph["usgan.data.readers"]             # `from ..errors import ...`
    assert "usgan.data.report" in graph["usgan.data.check"]          # `from .report import ...`
    assert "usgan.weights" in graph["usgan.weights.__main__"]        # `from . import KNOWN, ...`: the package
    assert "usgan.metrics.validation" in graph["usgan.launch"]       # `from .metrics.validation import ...`


def test_only_command_lines_import_the_command_line_layer():
    """cli_common turns errors into exit codes; the library (faces, video, metrics, ...) raises usgan.errors instead."""
    names, graph = module_names(PACKAGE), import_graph()
    commands = {name for name, path in names.items()
                if name.endswith("__main__") or name == "usgan.console"
                or any(isinstance(f, ast.FunctionDef) and f.name == "main" for f in ast.parse(path.read_text()).body)}
    assert {"usgan.synthesize", "usgan.evaluate", "usgan.train"} <= commands and "usgan.faces" not in commands
    library_users = sorted(name for name in graph if "usgan.cli_common" in graph[name] and name not in commands)
    assert not library_users, f"library modules import usgan.cli_common: {library_users}"


def test_a_cycle_is_found_and_named(tmp_path):
    pkg = tmp_path / "usgan"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..c import g\n")
    (pkg / "c.py").write_text("import usgan.a\n")
    assert find_cycle(import_graph(pkg)) == ["usgan.a", "usgan.sub.b", "usgan.c", "usgan.a"]
    (pkg / "c.py").write_text("import os\n")
    assert find_cycle(import_graph(pkg)) is None
