"""The OpenAPI schema is the contract: schemathesis generates requests for every operation from it and checks
that none gets a 5xx and every response matches what the schema declares.

The app runs over a fresh, empty index with the LLM pointed at a closed port: every query then ends in a 404
(no such collection) or a 4xx from validation before any generation, which keeps the run to seconds. Answer
paths against a real vLLM are covered by test_openai_client.py.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from app.api.main import create_app
from app.resources import Resources
from app.vllm_server import free_port
from tests.conftest import make_settings

# Validity these operations check that JSON Schema cannot state (a file's type by its name; the role of the
# last chat message): schema-valid requests may rightly get a 415 or 422, so only the other checks apply.
BEYOND_THE_SCHEMA = {"/v1/documents", "/v1/chat/completions"}

# The schema is read at import (schemathesis parametrizes at collection time); the app builds nothing heavy
# until a request needs it, and the fixture below lends it the session's loaded embedder before any does.
_DATA_DIR = Path(tempfile.mkdtemp(prefix="ragline-contract-"))
_RESOURCES = Resources(make_settings(_DATA_DIR, llm_base_url=f"http://127.0.0.1:{free_port()}/v1"))
# /readyz is left out: its 503 while the LLM is down is its purpose (tests/app/test_llm_errors.py covers it).
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(_RESOURCES)).exclude(path="/readyz")


# The same contract with API keys: the schema now declares bearer auth, and schemathesis also checks that a
# request without a key (or with a wrong one) is refused with 401.
_KEYS = _DATA_DIR / "api_keys.toml"
_KEYS.write_text('[keys]\n"sk-contract" = "contract"\n')
_KEYED = Resources(
    make_settings(_DATA_DIR / "keyed", llm_base_url=_RESOURCES.settings.llm_base_url, api_keys_file=_KEYS)
)
keyed_schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(_KEYED)).exclude(path="/readyz")


@pytest.fixture(scope="module", autouse=True)
def _shared_embedder(sample_resources: Resources) -> Iterator[None]:
    _RESOURCES.__dict__["embedder"] = _KEYED.__dict__["embedder"] = sample_resources.embedder
    yield
    shutil.rmtree(_DATA_DIR, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_every_operation_honours_the_schema(case: schemathesis.Case) -> None:
    excluded = [positive_data_acceptance] if case.operation.path in BEYOND_THE_SCHEMA else []
    case.call_and_validate(excluded_checks=excluded)


@keyed_schema.parametrize()
@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_every_operation_honours_the_schema_with_api_keys(case: schemathesis.Case) -> None:
    excluded = [positive_data_acceptance] if case.operation.path in BEYOND_THE_SCHEMA else []
    case.call_and_validate(headers={"Authorization": "Bearer sk-contract"}, excluded_checks=excluded)
