"""Imports point one way: bot → handlers → storage; jobs → storage. The sandbox stays out of production paths.

- storage imports nothing of ours above it; handlers and jobs never import bot;
- bot/sandbox (fake WeChat, simulator, demo) is imported by nothing in production code: only the demo command
  (bot/cli/demo.py, inside the command's function) reaches it, and the app loads the simulator by name on demand
  while HOUQIN_SIMULATOR is on. Tests may import it.

Inside storage:
- every import runs when the module loads (a cycle is broken by moving code, not by an import in a function);
- a domain package (storage/<domain>/) is used through the package: other code imports `storage.<domain>`, never
  its modules (but for the few listed in PUBLIC_MODULES); its models.py imports no service, no query and no domain
  package; what its modules export (`__all__`, re-exported by its __init__) does not clash;
- storage.ledger, which puts the domains' console views together, is imported by nothing else in storage.
"""

import ast
import importlib
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
# A domain package's modules that others may import directly: not re-exported by the package.
PUBLIC_MODULES = {"storage.visitor.parse"}


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


def domain_packages() -> list[str]:
    return sorted(p.parent.name for p in (ROOT / "storage").glob("*/__init__.py") if p.parent.name != "migrations")


def test_storage_imports_nothing_inside_a_function():
    bad = []
    for path in sources("storage"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = module_level(tree)
        bad += [f"{path.relative_to(ROOT)}:{node.lineno}" for node in ast.walk(tree)
                if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in top]
    assert not bad, "imports inside a function:\n" + "\n".join(bad)


def test_domain_packages_are_used_through_the_package():
    packages = domain_packages()
    assert {"repair", "leave", "visitor", "reminder", "duty", "inspection", "certificates"} <= set(packages)
    bad = []
    for pkg in ALLOWED:
        for path in sources(pkg):
            rel = path.relative_to(ROOT)
            for name, node in imported_modules(ast.parse(path.read_text(encoding="utf-8"))):
                parts = name.split(".")
                if len(parts) < 3 or parts[0] != "storage" or parts[1] not in packages:
                    continue
                inside = rel.parts[:2] == ("storage", parts[1])
                module = ".".join(parts[:3])
                if not inside and module not in PUBLIC_MODULES and (ROOT / "storage" / parts[1] / f"{parts[2]}.py").exists():
                    bad.append(f"{rel}:{node.lineno} imports {module} (use storage.{parts[1]})")
    assert not bad, "\n".join(sorted(set(bad)))


def test_domain_models_import_no_service():
    packages = domain_packages()
    bad = []
    for pkg in packages:
        path = ROOT / "storage" / pkg / "models.py"
        assert path.exists(), f"storage/{pkg}/ has no models.py"
        for name, node in imported_modules(ast.parse(path.read_text(encoding="utf-8"))):
            parts = name.split(".")
            if parts[0] != "storage" or len(parts) < 2:
                continue
            if parts[1] in packages and parts[2:3] != ["models"] or parts[1] in ("ledger", "listing"):
                bad.append(f"storage/{pkg}/models.py:{node.lineno} imports {name}")
    assert not bad, "\n".join(bad)


def test_domain_package_exports_do_not_clash():
    bad = []
    for pkg in domain_packages():
        package = importlib.import_module(f"storage.{pkg}")
        seen: dict[str, str] = {}
        for path in sorted((ROOT / "storage" / pkg).glob("*.py")):
            if path.stem == "__init__":
                continue
            module = importlib.import_module(f"storage.{pkg}.{path.stem}")
            for name in getattr(module, "__all__", []):
                assert hasattr(module, name), f"storage.{pkg}.{path.stem}.__all__ names {name}, which it lacks"
                if name in seen:
                    bad.append(f"storage.{pkg}: {name} exported by both {seen[name]} and {path.stem}")
                seen[name] = path.stem
        assert set(package.__all__) == {n for n, m in seen.items() if f"storage.{pkg}.{m}" not in PUBLIC_MODULES}, pkg
        assert all(getattr(package, n) is getattr(importlib.import_module(f"storage.{pkg}.{seen[n]}"), n)
                   for n in package.__all__), pkg
    assert not bad, "\n".join(bad)


def test_nothing_in_storage_imports_the_ledger():
    bad = []
    for path in sources("storage"):
        if path.relative_to(ROOT).as_posix() == "storage/ledger.py":
            continue
        for name, node in imported_modules(ast.parse(path.read_text(encoding="utf-8"))):
            if name == "storage.ledger":
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not bad, "\n".join(bad)

