"""Every /api/v1/ response matches the OpenAPI schema: schemathesis over the whole API, then stateful via links.

Runs in-process (WSGI) against a seeded tenant with an API key of every scope. Examples are bounded
(a fixed seed, a few per operation) so the file runs in a few minutes on 2 cores.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import hypothesis
import pytest
import schemathesis
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts import services
from accounts.models import Contact, CustomerAccount
from tests.usage.factories import make_catalog

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]
EXAMPLES_PER_OPERATION = 30
SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
)


@pytest.fixture
def seeded(world_a):
    """A tenant with a published catalog, accounts with and without licences, and a key of every scope."""
    catalog = make_catalog(world_a.tenant)
    for i in range(3):
        account = CustomerAccount.objects.create(tenant=world_a.tenant, external_id=f"acct-{i + 2}", name=f"C{i}")
        Contact.objects.create(tenant=world_a.tenant, account=account, email=f"c{i}@customer.test")
    _, secret = services.create_api_key(
        world_a.tenant, name="schemathesis", scopes=["read", "write", "ingest"], actor="t"
    )
    return {"Authorization": f"Bearer {secret}"}, catalog


@pytest.fixture
def api_schema(seeded):
    # As Django's test client does: a request ending must not close the test's connection (and its transaction).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", WSGIHandler())
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def auth_headers(seeded):
    return seeded[0]


schema = schemathesis.pytest.from_fixture("api_schema")


@contextmanager
def rolled_back() -> Iterator[None]:
    """Each example (or stateful scenario) starts from the seeded state: hypothesis replays examples
    while shrinking, and a replay that met different data would be reported as flaky generation."""
    savepoint = transaction.savepoint()
    try:
        yield
    finally:
        transaction.savepoint_rollback(savepoint)
        cache.clear()


@schema.parametrize()
@SETTINGS
def test_every_operation_answers_within_its_schema_and_never_5xx(case, auth_headers):
    with rolled_back():
        case.call_and_validate(headers=auth_headers, checks=CHECKS)


def test_stateful_sequences_through_the_schemas_links_stay_within_the_schema(api_schema, auth_headers):
    base = api_schema.as_state_machine()
    followed: list[str] = []  # links whose target answered 2xx with the value the link carried

    class Machine(base):  # type: ignore[misc, valid-type]
        def step(self, input):
            output = super().step(input)
            if input.transition is not None and input.is_applied and output.response.status_code < 300:
                followed.append(f"{input.case.method} {input.case.path}")
            return output

        def setup(self):
            self._scenario = rolled_back()
            self._scenario.__enter__()

        def teardown(self):
            self._scenario.__exit__(None, None, None)

        def get_call_kwargs(self, case):
            return {"headers": auth_headers}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=CHECKS)

    Machine.run(
        settings=hypothesis.settings(
            max_examples=40,
            stateful_step_count=6,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    assert any(step.startswith(("GET /api/v1/accounts/{external_id}", "PATCH")) for step in followed), followed
