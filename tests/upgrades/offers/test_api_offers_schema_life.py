"""The offer endpoints answer within their OpenAPI schema for real offers in every state the API shows
(the whole-API schemathesis run has no offers to read): each offer read, listed, declined and accepted
through schemathesis' own response checks, and the offer operations fuzzed against a seeded tenant."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import hypothesis
import pytest
import schemathesis
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.utils import timezone
from hypothesis import HealthCheck
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts import services
from billing.models import PlanChange, PlanChangeKind, PlanChangeState
from tests.upgrades.offers.factories_life import holding, make_offer
from upgrades.offers.models import Offer, OfferState

pytestmark = [pytest.mark.integration, pytest.mark.django_db]
S = OfferState
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]


def _plan_change(held, state: str, **fields) -> PlanChange:
    return PlanChange.objects.create(
        tenant=held.tenant,
        license=held.license,
        account=held.account,
        kind=PlanChangeKind.UPGRADE,
        state=state,
        target_price=held.catalog.prices["business-month"],
        target_seats=3,
        quote_amount_due=6210,
        quote_expires_at=timezone.now() + timedelta(minutes=30),
        **fields,
    )


@pytest.fixture
def seeded(world_a) -> tuple[dict, list[Offer]]:
    held = holding(world_a.tenant, world_a.account)
    settled = _plan_change(held, PlanChangeState.SETTLED, charged_amount=6210, settled_at=timezone.now())
    failed = _plan_change(held, PlanChangeState.CANCELED, failure_code="card_declined", failure_message="Declined.")
    offers = [
        make_offer(held, state=S.SENT),
        make_offer(
            held,
            state=S.VIEWED,
            target="team",
            discount={"percent": "12.5", "amount": 1088, "explanation": "Volume", "within_policy": True},
            anchor={"key": "business-month", "tier": "business", "amount": 29700},
        ),
        make_offer(
            held, state=S.FULFILLED, target_kind="addon", target_key="sso", plan_change=settled, amount_charged=6210
        ),
        make_offer(held, state=S.ACCEPTED, target_kind="addon", target_key="pack", plan_change=failed),
        make_offer(held, state=S.DECLINED, target_kind="bundle", target_key="health", quote=None, roi=None),
        make_offer(held, state=S.EXPIRED, target_kind="bundle", target_key="fin", evidence={}, options=[]),
    ]
    _, secret = services.create_api_key(world_a.tenant, name="schema", scopes=["read", "write"], actor="t")
    return {"Authorization": f"Bearer {secret}"}, offers


@pytest.fixture
def offers_schema(seeded):
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


@contextmanager
def rolled_back() -> Iterator[None]:
    savepoint = transaction.savepoint()
    try:
        yield
    finally:
        transaction.savepoint_rollback(savepoint)
        cache.clear()


def test_every_offer_state_reads_lists_declines_and_accepts_within_the_schema(offers_schema, seeded):
    headers, offers = seeded
    detail = offers_schema["/api/v1/offers/{id}"]["GET"]
    listing = offers_schema["/api/v1/offers"]["GET"]
    decline = offers_schema["/api/v1/offers/{id}/decline"]["POST"]
    accept = offers_schema["/api/v1/offers/{id}/accept"]["POST"]
    statuses = []
    for offer in offers:
        response = detail.Case(path_parameters={"id": offer.pk}).call_and_validate(headers=headers, checks=CHECKS)
        assert response.status_code == 200
    for query in ({}, {"state": "fulfilled"}, {"account": "acct-1", "page_size": 2}):
        listing.Case(query=query).call_and_validate(headers=headers, checks=CHECKS)
    for offer in offers:
        with rolled_back():
            for op, body in ((decline, {"reason": "not_now", "text": "Later."}), (accept, {"option": "team-year"})):
                case = op.Case(path_parameters={"id": offer.pk}, body=body, media_type="application/json")
                statuses.append(case.call_and_validate(headers=headers, checks=CHECKS).status_code)
    assert 200 in statuses and 409 in statuses


schema = schemathesis.pytest.from_fixture("offers_schema").include(path_regex="^/api/v1/offers")


@schema.parametrize()
@hypothesis.settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
)
def test_the_offer_operations_answer_within_their_schema_and_never_5xx(case, auth_headers):
    with rolled_back():
        case.call_and_validate(headers=auth_headers, checks=CHECKS)
