"""Property-based conformance of the API to its own OpenAPI document (Schemathesis, all checks).

Runs against the real app under uvicorn, on PostgreSQL, with a real Prefect server (so activating a
workflow really deploys it), authenticated with an admin key.

One configured expectation: for the operations whose bodies are documents or run parameters, a
request that matches the JSON Schema may still be refused with 422, because what makes it valid
is not expressible in JSON Schema (a DAG without cycles, references between tasks and to the
stored specification, the specification's own parameter schema).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig

from api.app import create_app
from tests.api.support import ADMIN_KEY, ApiServer
from trinity.core.settings import Settings

# The server under test runs in a thread of this process, and code there draws on the global
# `random` (the websockets client's ping payloads, Prefect's poll jitter) while Hypothesis generates
# a case in this thread; Hypothesis takes that for a strategy using `random` and warns, now and
# then. The strategies are schemathesis's own.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Do not use the .random. module inside strategies:hypothesis.errors.HypothesisDeprecationWarning"
)

MAX_EXAMPLES = int(os.environ.get("TRINITY_FUZZ_EXAMPLES", "25"))
SEMANTIC_BODIES = r"^/api/v1/(specs|workflows)(/\{[a-z_]+\})?(/execute)?$"


@pytest.fixture(scope="module")
def fuzz_server(prefect_api_module: ApiServer) -> ApiServer:
    """The module's PostgreSQL-backed server with Prefect (the fuzzer keeps what it creates)."""
    return prefect_api_module


def _config() -> SchemathesisConfig:
    positive_with_semantics: dict[str, Any] = {
        "include-path-regex": SEMANTIC_BODIES,
        "include-method-regex": "^(POST|PUT)$",
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "401", "403", "404", "409", "422", "429"]
            }
        },
    }
    # Last-Event-ID is an opaque id only the API makes: an id it did not send is refused (422);
    # the fuzzer's header values do not keep to the published pattern.
    resumable_streams: dict[str, Any] = {
        "include-path-regex": "/events$",
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "401", "403", "404", "409", "422", "429"]
            }
        },
    }
    return SchemathesisConfig.from_dict(
        {
            "seed": int(os.environ.get("TRINITY_FUZZ_SEED", "20241122")),
            "generation": {"max-examples": MAX_EXAMPLES},
            "headers": {"X-API-Key": ADMIN_KEY},
            "operations": [positive_with_semantics, resumable_streams],
        }
    )


def _openapi_document() -> dict[str, Any]:
    # The document the server publishes, built from the same code without starting anything.
    app = create_app(Settings.model_validate({"security": {"jwt_secret": "x" * 64}}))
    return app.openapi()


schema = schemathesis.openapi.from_dict(_openapi_document(), config=_config())


@schema.parametrize()
def test_api_conforms_to_its_openapi_document(case: Any, fuzz_server: ApiServer) -> None:
    case.call_and_validate(base_url=fuzz_server.url, headers={"X-API-Key": ADMIN_KEY})
