"""Property-based tests of the live HTTP API against its own OpenAPI spec (schemathesis).

The real app (fake embedder, scripted generator, ready) is served by uvicorn on a free port and
schemathesis generates valid and invalid requests for every documented operation from
/openapi.json. Every response must be a non-5xx, of a documented status code and content type,
and match the documented schema; invalid data must be rejected. Bounded and deterministic: a fixed
seed and a few examples per operation, so the file runs in well under a minute on 2 cores.
"""

from __future__ import annotations

import pytest
import schemathesis
from conftest import ScriptedGenerator, fake_parts, live_server
from hypothesis import HealthCheck, settings

from assistant.api import create_app
from assistant.pipeline import Pipeline
from assistant.service import Service

REPLY = "到2022年,川东北经济区地区生产总值力争突破9000亿元【一-2】。"
CONFIG = {
    "seed": 20260101,
    "generation": {"mode": "all", "max-examples": 12, "deterministic": True,
                   "no-shrink": True},
    "checks": {
        # Schema-valid but refused on meaning, with a documented OpenAI-style error: a question
        # blank once control characters are stripped or longer than Settings.max_question_chars
        # (400), an unknown model or clause id (404), a batch over Settings.api_max_batch (413).
        # These limits are settings, so the static schema cannot state them.
        "positive_data_acceptance": {"expected-statuses": ["2xx", "400", "404", "413", "5xx"]},
        "negative_data_rejection": {"expected-statuses": ["400", "404", "405", "413", "422"]},
    },
}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    settings_, _, retriever = fake_parts(tmp_path_factory.mktemp("schemathesis"))
    service = Service(settings_, pipeline=Pipeline(settings_, retriever, ScriptedGenerator(REPLY)),
                      ready=True)
    with live_server(create_app(service)) as url:
        yield schemathesis.openapi.from_url(f"{url}/openapi.json",
                                            config=schemathesis.Config.from_dict(CONFIG))


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=12, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_spec(case):
    case.call_and_validate(timeout=30)
