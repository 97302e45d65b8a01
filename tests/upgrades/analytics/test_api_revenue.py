"""GET /api/v1/metrics/revenue: the figures from LicenseChange, validation (400, field + reason), scope, tenants."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from billing.models import LicenseChange

URL = "/api/v1/metrics/revenue"
pytestmark = pytest.mark.django_db


def record(world, when: str, mrr: int, *, before: int = 0, currency="USD", status="active", tier="basic", account=None):
    return LicenseChange.objects.create(
        tenant=world.tenant,
        account=account or world.account,
        kind="new" if not before else "upgrade",
        to_state={"tier": tier, "status": status},
        actor_label="test",
        mrr_before=before,
        mrr_after=mrr,
        currency=currency,
        effective_at=datetime.fromisoformat(when).replace(tzinfo=UTC),
    )


def test_periods_with_movements_from_the_history(world_a):
    record(world_a, "2026-01-10", 1000)
    record(world_a, "2026-02-10", 2500, before=1000, tier="pro")
    response = world_a.api("read").get(URL, {"from": "2026-01", "to": "2026-03"})
    assert response.status_code == 200, response.content
    body = response.json()
    periods = {p["period"]: p for p in body["periods"]}
    assert list(periods) == ["2026-01", "2026-02", "2026-03"]
    assert periods["2026-01"]["new"] == 1000 and periods["2026-01"]["currency"] == "USD"
    assert (periods["2026-02"]["mrr_start"], periods["2026-02"]["expansion"], periods["2026-02"]["mrr_end"]) == (
        1000,
        1500,
        2500,
    )
    assert periods["2026-02"]["nrr"] == 2.5 and periods["2026-02"]["grr"] == 1.0
    assert "contraction" in body["definitions"] and body["group_by"] is None


def test_group_by_tier(world_a):
    record(world_a, "2026-01-10", 1000)
    body = world_a.api("read").get(URL, {"from": "2026-01", "to": "2026-01", "group_by": "tier"}).json()
    assert body["periods"] == [
        {
            "period": "2026-01",
            "currency": "USD",
            "group": "basic",
            "mrr_start": 0,
            "mrr_end": 1000,
            "new": 1000,
            "expansion": 0,
            "contraction": 0,
            "churn": 0,
            "reactivation": 0,
            "customers_start": 0,
            "customers_end": 1,
            "customers_expanded": 0,
            "nrr": None,
            "grr": None,
        }
    ]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-13"}, "from"),
        ({"from": "26-01"}, "from"),
        ({"to": "2026-1"}, "to"),
        ({"from": "1999-12", "to": "2000-01"}, "from"),
        ({"from": "2026-05", "to": "2026-01"}, "from"),
        ({"from": "2000-01", "to": "2026-01"}, "from"),
        ({"to": "2099-01"}, "to"),
        ({"group_by": "planet"}, "group_by"),
    ],
)
def test_invalid_queries_answer_400_with_field_and_reason(world_a, params, field):
    response = world_a.api("read").get(URL, params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and error["details"][field]


def test_defaults_to_the_last_twelve_months(world_a):
    body = world_a.api("read").get(URL).json()
    assert body["periods"] == []  # no history yet: nothing to report, and no error


def test_needs_the_read_scope(world_a):
    assert world_a.api("ingest").get(URL).status_code == 403
    assert world_a.api("read").get(URL).status_code == 200


def test_another_tenants_history_never_counts(world_a, world_b):
    record(world_b, "2026-01-10", 99_000, currency="EUR")
    record(world_a, "2026-01-10", 1000)
    body = world_a.api("read").get(URL, {"from": "2026-01", "to": "2026-01"}).json()
    assert [(p["currency"], p["mrr_end"]) for p in body["periods"]] == [("USD", 1000)]
    body_b = world_b.api("read").get(URL, {"from": "2026-01", "to": "2026-01"}).json()
    assert [(p["currency"], p["mrr_end"]) for p in body_b["periods"]] == [("EUR", 99_000)]
