"""The shape of the code, checked: imports point one way, with no cycles, and only command
modules import the CLI helpers."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rag", "indexes", "serve", "eval", "embed_finetune", "llm_finetune")
COMMAND_MODULES = {"rag.cli", "eval.cli", "serve.cli", "embed_finetune.cli", "llm_finetune.cli"}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            found[".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> project modules it imports, at the top or inside a function, plus the commands
    `rag.cli` loads through the `ragstack.commands` entry point."""
    modules = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                subs = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules]
                targets = subs if len(subs) == len(node.names) else [node.module, *subs]
            else:
                continue
            graph[module] |= {r for t in targets if (r := resolve(t)) and r != module}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for target in project["entry-points"]["ragstack.commands"].values():
        graph["rag.cli"].add(resolve(target.split(":")[0]))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                found.append(sorted([v, *component]))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_imports_point_one_way() -> None:
    graph = import_graph()
    for module, imported in graph.items():
        top = {m.split(".")[0] for m in imported}
        if module != "rag.cli":  # it loads the commands of the packages built on it
            assert "serve" not in top or module.startswith("serve"), f"{module} imports serve"
        if module.startswith(("rag", "indexes")) and module != "rag.cli":
            assert not top & {"eval", "embed_finetune", "llm_finetune", "serve"}, module
        if module.startswith("indexes"):
            assert all(m.startswith("indexes") for m in imported), module
        if module not in COMMAND_MODULES:
            assert not imported & COMMAND_MODULES, f"{module} imports a command module"
        if "rag.terminal" in imported:
            assert module in COMMAND_MODULES, f"{module} is library code but imports the CLI helpers"


def test_a_cycle_would_be_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
