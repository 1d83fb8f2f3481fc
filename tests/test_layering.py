"""Imports point one way: bot → handlers → storage; jobs → storage. The sandbox stays out of production paths.

- storage imports nothing of ours above it; handlers and jobs never import bot;
- bot/sandbox (fake WeChat, simulator, demo) is imported by nothing in production code: only the demo command
  (bot/cli/demo.py, inside the command's function) reaches it, and the app loads the simulator by name on demand
  while HOUQIN_SIMULATOR is on. Tests may import it.
"""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OURS = {"storage", "handlers", "jobs", "bot"}
ALLOWED = {
    "storage": {"storage"},
    "handlers": {"handlers", "storage"},
    "jobs": {"jobs", "storage"},
    "bot": {"bot", "handlers", "storage", "jobs"},
}
SANDBOX = "bot.sandbox"
# Modules outside the sandbox that may import it, and only inside a function (never when the module loads).
SANDBOX_LAZY_IMPORTERS = {"bot/cli/demo.py"}


def imported_modules(tree: ast.AST) -> list[tuple[str, ast.AST]]:
    """Every absolute import as (dotted module, node); `from bot import sandbox` counts as bot.sandbox."""
    found: list[tuple[str, ast.AST]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node))
            found += [(f"{node.module}.{a.name}", node) for a in node.names]
    return found


def module_level(tree: ast.Module) -> set[int]:
    """ids of the import nodes that run when the module loads (not inside a function)."""
    top: set[int] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                top.add(id(child))
            visit(child)

    visit(tree)
    return top


def sources(pkg: str) -> list[Path]:
    return sorted(p for p in (ROOT / pkg).rglob("*.py") if "migrations" not in p.parts or pkg != "storage")


def test_imports_point_one_way():
    bad = []
    for pkg, allowed in ALLOWED.items():
        for path in sources(pkg):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            wrong = {name.split(".")[0] for name, _ in imported_modules(tree)} & OURS - allowed
            if wrong:
                bad.append(f"{path.relative_to(ROOT)} imports {sorted(wrong)}")
    assert not bad, "\n".join(bad)


def test_production_code_does_not_import_the_sandbox():
    bad = []
    for pkg in ALLOWED:
        for path in sources(pkg):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith("bot/sandbox/"):
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            top = module_level(tree)
            for name, node in imported_modules(tree):
                if name != SANDBOX and not name.startswith(SANDBOX + "."):
                    continue
                if rel in SANDBOX_LAZY_IMPORTERS and id(node) not in top:
                    continue
                bad.append(f"{rel}:{node.lineno} imports {name}")
    assert not bad, "\n".join(bad)


def test_starting_the_server_or_the_cli_loads_no_sandbox_module():
    code = ("import sys, bot.app, bot.cli, jobs.scheduler; bot.cli._load_plugins(); "
            "print(sorted(m for m in sys.modules if m.startswith('bot.sandbox')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
