"""The fakes (Asana, the language model) cannot be imported from product code: ruff's banned-api rule (TID251,
configured in pyproject.toml) fails on it, except in tests, conftest.py, bench/, tools/ and
the fake's own package (its server module is the local-simulation entry point)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUFF = Path(sys.executable).with_name("ruff")
IMPORTS = [
    "from integrations.asana.fake.server import FakeAsanaServer\n\nprint(FakeAsanaServer)\n",
    "import integrations.asana.fake.api\n\nprint(integrations.asana.fake.api)\n",
    "from integrations.asana import fake\n\nprint(fake)\n",
]


def ruff(path: str, source: str) -> subprocess.CompletedProcess:
    """Ruff with the project's configuration on `source`, as if it were the file `path`."""
    return subprocess.run(
        [str(RUFF), "check", "--no-cache", "--stdin-filename", path, "-"],
        input=source,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


@pytest.mark.parametrize("source", IMPORTS)
@pytest.mark.parametrize(
    "path", ["integrations/pipeline/new_step.py", "goals/new_view.py", "pilotsite/new.py"]
)
def test_product_code_importing_the_fake_fails_the_lint(path, source):
    result = ruff(path, source)

    assert result.returncode == 1
    assert "TID251" in result.stdout and "fake Asana is for tests" in result.stdout


@pytest.mark.parametrize("source", IMPORTS)
@pytest.mark.parametrize(
    "path",
    [
        "integrations/tests/test_new.py",
        "goals/tests/test_new.py",
        "conftest.py",
        "bench/new_bench.py",
        "tools/new_tool.py",
        "integrations/asana/fake/new_part.py",
    ],
)
def test_tests_bench_tools_and_the_fake_itself_may_import_it(path, source):
    result = ruff(path, source)

    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("path", ["goals/llm/drafts.py", "goals/tab.py", "integrations/tab.py"])
def test_product_code_importing_the_fake_language_model_fails_the_lint(path):
    result = ruff(path, "from goals.llm.fake_server import FakeLLM\n\nprint(FakeLLM)\n")

    assert result.returncode == 1
    assert "TID251" in result.stdout and "fake language model is for tests" in result.stdout
