"""The committed Asana contract is current, valid, and matches what the fake Asana serves."""

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
from openapi_spec_validator import validate

from integrations.asana.fake.routes import ROUTES
from integrations.asana.fake.validation import CONTRACT_PATH

DERIVE_SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "derive_asana_contract.py"


def derive_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("derive_asana_contract", DERIVE_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_contract_is_derived_from_asanas_current_spec():
    derive = derive_module()
    if not derive.DEFAULT_SPEC.exists():
        pytest.skip(f"Asana's spec is not at {derive.DEFAULT_SPEC}; cannot re-derive the contract")

    expected = derive.render(derive.derive(derive.load_spec(derive.DEFAULT_SPEC)))

    assert CONTRACT_PATH.read_text(encoding="utf-8") == expected, (
        "contract.json is stale: run .venv/bin/python tools/derive_asana_contract.py"
    )


def test_the_contract_is_a_valid_openapi_document():
    validate(json.loads(CONTRACT_PATH.read_text(encoding="utf-8")))


def test_the_fake_serves_exactly_the_operations_in_the_contract():
    contract = json.loads(CONTRACT_PATH.read_text(encoding="utf-8"))
    in_contract = {
        (method.upper(), path)
        for path, item in contract["paths"].items()
        for method in item
        if method != "parameters"
    }
    served = {
        (method, pattern.pattern.replace("(?P<", "{").replace(">[^/]+)", "}"))
        for method, pattern, _ in ROUTES
    }

    assert served == in_contract
