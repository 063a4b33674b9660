"""The README's layout table matches the tree: every module it names exists, and every
product module is named (by file, or by a folder the table describes as a whole)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("pilotsite", "integrations", "goals")


def layout_paths() -> list[str]:
    """Each backticked path of the table's first column; a bare file name is read in the
    folder of the path before it in the same cell (`pilotsite/admin.py`, `views.py`)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    paths = []
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        folder = ""
        for name in re.findall(r"`([^`]+)`", line.split(" | ")[0]):
            if "/" in name.rstrip("/"):
                folder = name.rsplit("/", 1)[0] if not name.endswith("/") else name.rstrip("/")
                paths.append(name)
            else:
                paths.append(f"{folder}/{name}" if folder else name)
    return paths


def product_modules() -> set[str]:
    return {
        str(path.relative_to(ROOT))
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if not {"tests", "migrations"} & set(path.relative_to(ROOT).parts)
        and path.name != "__init__.py"
    }


def test_every_path_the_layout_names_exists():
    missing = [p for p in layout_paths() if "*" not in p and not (ROOT / p).exists()]
    assert missing == []


def test_every_product_module_is_in_the_layout():
    named = layout_paths()
    folders = tuple(p for p in named if p.endswith("/"))
    unnamed = sorted(m for m in product_modules() if m not in named and not m.startswith(folders))
    assert unnamed == []
