"""Layering points one way: the site (`pilotsite/`) imports no app, `integrations` never
imports `goals`, and no two apps import each other, not even lazily inside a function.

Apps plug into the site from their `AppConfig.ready()` instead (tabs, card sections, system
checks, job functions, URLs, the audit of the site's announcements). Tests, `bench/` and
`tools/` may import anything; this reads the product code only.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("pilotsite", "integrations", "goals")
APPS = ("integrations", "goals")
# Calls whose first string argument names a module to import later.
IMPORTING_CALLS = {"import_module", "include", "import_string", "locate"}


def product_files(package: str) -> list[Path]:
    return sorted(
        path
        for path in (ROOT / package).rglob("*.py")
        if "tests" not in path.relative_to(ROOT).parts and path.name != "conftest.py"
    )


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str = "", is_package: bool = False) -> set[str]:
    """Every module the source imports, wherever the import sits (module level, inside a
    function, under TYPE_CHECKING), relative imports resolved against `module`, plus modules
    named as strings to `import_module`, `include`, `import_string` or `pydoc.locate`."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if (
                name in IMPORTING_CALLS
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
            ):
                found.add(first.value)
    return found


def app_imports(package: str) -> dict[str, set[str]]:
    """For each app another package's product code imports: the files that do it."""
    result: dict[str, set[str]] = {}
    for path in product_files(package):
        module = _module_of(path)
        for name in imported_modules(path.read_text(), module, path.name == "__init__.py"):
            top = name.split(".")[0]
            if top in PACKAGES and top != package:
                result.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return result


def test_the_scan_sees_lazy_relative_and_string_imports():
    source = (
        "from . import sibling\n"
        "def f():\n"
        "    from integrations import audit\n"
        "    import goals.jobs\n"
        "include('integrations.webhooks.urls')\n"
    )
    found = imported_modules(source, "pilotsite.admin")
    assert {
        "pilotsite.sibling",
        "integrations",
        "goals.jobs",
        "integrations.webhooks.urls",
    } <= found


def test_the_site_imports_no_app():
    imports = app_imports("pilotsite")
    assert {app: files for app, files in imports.items() if app in APPS} == {}


def test_integrations_never_imports_goals():
    assert app_imports("integrations").get("goals", set()) == set()


def test_no_import_cycle_between_packages():
    graph = {package: set(app_imports(package)) for package in PACKAGES}
    # Peel off, again and again, the packages that import only packages already peeled off;
    # a cycle (of any length) leaves some that never qualify.
    order: list[str] = []
    remaining = dict(graph)
    while remaining:
        ready = [p for p, deps in remaining.items() if deps <= set(order)]
        assert ready, f"import cycle among {sorted(remaining)}"
        order.extend(sorted(ready))
        for p in ready:
            del remaining[p]
    assert order == ["pilotsite", "integrations", "goals"]
