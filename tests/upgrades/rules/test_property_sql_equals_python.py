"""The two evaluators agree: for generated rules and data, compiled SQL matches exactly the accounts
for which the Python evaluator says the rule holds (STYLE.md, "A rule condition")."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import CustomerAccount, Tenant
from billing.models import License, LicenseGrant
from catalog.models import MeterWindow
from tests.upgrades.rules.conftest import NOW, add_event
from tests.usage.factories import give_license, make_catalog
from upgrades.rules.conditions import EvalContext, parse_condition
from upgrades.rules.data import load_account_data, load_rule_catalog
from upgrades.rules.engine import matching_account_ids
from upgrades.rules.models import AccountLimit
from usage.models import Event, UsageDistinctValue, UsageRollup

DAY = datetime.timedelta(days=1)
METERS = ["api_calls", "storage", "active_users"]
ORIGINAL_WINDOWS = {"api_calls": MeterWindow.CALENDAR_MONTH, "storage": MeterWindow.CALENDAR_MONTH,
                    "active_users": MeterWindow.ROLLING_DAYS}  # tests.usage.factories.make_catalog  # fmt: skip
ZONES = ["UTC", "America/New_York", "Asia/Kolkata", "Pacific/Auckland"]


def leaf() -> st.SearchStrategy[dict]:
    meter = st.sampled_from(METERS)
    days = st.integers(1, 10)
    return st.one_of(
        st.builds(lambda m, p, n, k: {"kind": "meter_utilisation", "meter": m, "percent": p, "days": n,
                                      "min_days": min(k, n)},
                  meter, st.integers(1, 150), days, st.integers(1, 10)),  # fmt: skip
        st.builds(lambda m, p: {"kind": "seats_used", "meter": m, "percent": p}, meter, st.integers(1, 150)),
        st.builds(lambda m, op, v, n: {"kind": "meter_value", "meter": m, "op": op, "value": v, "days": n},
                  meter, st.sampled_from(["at_least", "at_most"]), st.integers(0, 60), days),  # fmt: skip
        st.builds(lambda m, p, n: {"kind": "meter_growth", "meter": m, "percent": p, "days": n},
                  meter, st.integers(1, 200), days),  # fmt: skip
        st.builds(lambda m, p, n: {"kind": "usage_fall", "meter": m, "percent": p, "days": n},
                  meter, st.integers(1, 100), days),  # fmt: skip
        st.builds(lambda k, n: {"kind": "gate_hits", "feature": "sso", "min_count": k, "days": n},
                  st.integers(1, 3), days),  # fmt: skip
        st.builds(lambda n, seen: {"kind": "event_seen", "event": "login", "days": n, "seen": seen},
                  days, st.booleans()),  # fmt: skip
        st.builds(lambda k, n: {"kind": "support_tickets", "min_count": k, "days": n}, st.integers(1, 3), days),
        st.builds(lambda op, s, n: {"kind": "survey_answer", "survey": "nps", "op": op, "score": s, "days": n},
                  st.sampled_from(["at_most", "at_least"]), st.integers(0, 10), days),  # fmt: skip
        st.builds(lambda n: {"kind": "trial_ends", "days": n}, st.integers(0, 10)),
        st.builds(lambda n, d, i: {"kind": "renewal_within", "days": n, "date": d, "interval": i},
                  st.integers(1, 20), st.sampled_from(["renewal", "commitment_end"]),
                  st.sampled_from(["any", "year", "month"])),  # fmt: skip
        st.builds(lambda op, vs: {"kind": "account_attribute", "field": "industry", "op": op, "values": vs},
                  st.sampled_from(["is", "is_not"]), st.lists(st.sampled_from(["software", "health"]), min_size=1)),
        st.builds(lambda op, vs: {"kind": "account_attribute", "field": "segment", "op": op, "values": vs},
                  st.sampled_from(["is", "is_not"]), st.lists(st.sampled_from(["smb", "enterprise"]), min_size=1)),
        st.builds(lambda op, vs: {"kind": "account_attribute", "field": "tier", "op": op, "values": vs},
                  st.sampled_from(["is", "is_not"]), st.lists(st.sampled_from(["team", "business"]), min_size=1)),
    )  # fmt: skip


trees = st.recursive(
    leaf(),
    lambda children: st.one_of(
        st.builds(lambda xs: {"all": xs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda xs: {"any": xs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda x: {"not": x}, children),
    ),
    max_leaves=5,
)

account_data = st.fixed_dictionaries(
    {
        "rollups": st.lists(st.tuples(st.sampled_from(METERS), st.integers(-25, 1), st.integers(0, 40)), max_size=25),
        "limits": st.dictionaries(st.sampled_from(METERS), st.integers(1, 120), max_size=3),
        "events": st.lists(
            st.tuples(
                st.sampled_from(["gate", "ticket", "survey", "login", "other"]),
                st.integers(-12 * 24 * 4, 2 * 24 * 4),  # quarter hours around now: crosses local midnights
                st.integers(0, 10),
            ),
            max_size=12,
        ),
        "seats": st.integers(1, 50),
        "status": st.sampled_from(["active", "canceled", "trialing"]),
        "period_end_hours": st.integers(-48, 24 * 25),
        # Billing-period meters: a period that began up to 45 days ago (or, oddly, later today).
        "period_start_hours": st.integers(-24 * 45, 12),
        "commitment_hours": st.none() | st.integers(-48, 24 * 25),
        "trial_hours": st.none() | st.integers(-24, 24 * 12),
    }
)


@pytest.fixture
def setup(world_a):
    catalog = make_catalog(world_a.tenant)
    accounts = [world_a.account]
    for i, (industry, segment) in enumerate([("health", "enterprise"), ("", "smb"), ("software", "")], start=2):
        accounts.append(
            CustomerAccount.objects.create(
                tenant=world_a.tenant, external_id=f"acct-{i}", name=f"A{i}", industry=industry, segment=segment
            )
        )
    for account, tier in zip(accounts[:3], [catalog.team, catalog.business, catalog.team], strict=True):
        give_license(account, tier, now=NOW)
    return world_a.tenant, catalog, accounts


def _meters(catalog) -> dict:
    return {"api_calls": catalog.api_meter, "storage": catalog.storage_meter, "active_users": catalog.users_meter}


def _write(tenant: Tenant, catalog, accounts, drawn: list[dict], now: datetime.datetime) -> None:
    meters = _meters(catalog)
    for model in (UsageRollup, UsageDistinctValue, AccountLimit, LicenseGrant):
        model.objects.for_tenant(tenant).delete()
    Event.objects.for_tenant(tenant).delete()
    today = now.astimezone(datetime.UTC).date()
    for account, data in zip(accounts, drawn, strict=True):
        for meter_key, offset, value in data["rollups"]:
            meter, day = meters[meter_key], today + offset * DAY
            if meter_key == "active_users":
                for v in range(value % 6):
                    UsageDistinctValue.objects.get_or_create(
                        tenant=tenant, account=account, meter=meter, day=day, value=f"u{v + offset % 3}"
                    )
            else:
                UsageRollup.objects.update_or_create(
                    tenant=tenant, account=account, meter=meter, day=day, defaults={"value": value, "event_count": 1}
                )
        for meter_key, limit in data["limits"].items():
            AccountLimit.objects.create(tenant=tenant, account=account, meter=meters[meter_key], limit_value=limit)
        for kind, quarter_hours, score in data["events"]:
            at = now + datetime.timedelta(minutes=15 * quarter_hours)
            if kind == "gate":
                add_event(account, "feature_gate_hit", at, feature="sso" if score % 3 else "storage")
            elif kind == "ticket":
                add_event(account, "support.ticket", at)
            elif kind == "survey":
                add_event(account, "survey.answered", at, survey="nps" if score != 7 else "csat",
                          score=score if score != 3 else "three")  # fmt: skip
            else:
                add_event(account, kind, at)
        lic = License.objects.filter(account=account).first()
        if lic is not None:
            lic.seats, lic.status = data["seats"], data["status"]
            lic.interval = "year" if data["seats"] % 2 else "month"
            lic.current_period_start = now + datetime.timedelta(hours=data["period_start_hours"], minutes=7)
            lic.current_period_end = now + datetime.timedelta(hours=data["period_end_hours"])
            lic.commitment_ends_at = (
                now + datetime.timedelta(hours=data["commitment_hours"])
                if data["commitment_hours"] is not None
                else None
            )
            lic.save()
        if data["trial_hours"] is not None:
            LicenseGrant.objects.create(
                tenant=tenant, account=account, kind="trial", tier=catalog.business,
                starts_at=now - DAY, ends_at=now + datetime.timedelta(hours=data["trial_hours"]),
            )  # fmt: skip


@pytest.mark.django_db
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    condition=trees,
    drawn=st.lists(account_data, min_size=4, max_size=4),
    zone=st.sampled_from(ZONES),
    minutes=st.integers(0, 24 * 60 - 1),
    # Mid-month, and early in a month: K-of-N windows then span two calendar months.
    day=st.sampled_from([datetime.date(2026, 11, 20), datetime.date(2026, 12, 1), datetime.date(2026, 12, 3)]),
    billed=st.sets(st.sampled_from(METERS)),  # meters whose window is the licence's billing period
)
def test_compiled_sql_matches_exactly_the_accounts_the_python_evaluator_matches(
    setup, condition, drawn, zone, minutes, day, billed
):
    tenant, catalog, accounts = setup
    for key, meter in _meters(catalog).items():
        meter.window = MeterWindow.BILLING_PERIOD if key in billed else ORIGINAL_WINDOWS[key]
        meter.save(update_fields=["window"])
    tenant.time_zone = zone
    tenant.save(update_fields=["time_zone"])
    now = datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC) + datetime.timedelta(minutes=minutes)
    _write(tenant, catalog, accounts, drawn, now)
    rules_catalog = load_rule_catalog(tenant)
    tree = parse_condition(condition, rules_catalog)
    assert parse_condition(tree.to_json(), rules_catalog).to_json() == tree.to_json()  # JSON round trip
    ctx = EvalContext(tenant_id=tenant.pk, now=now, time_zone=zone, catalog=rules_catalog)
    ids = [a.pk for a in accounts]
    data = load_account_data(tenant, account_ids=ids, conditions=[tree], ctx=ctx)
    by_python = {a for a in ids if tree.evaluate(data[a], ctx).matched}
    by_sql = set(matching_account_ids(tree, ctx))
    assert by_sql == by_python, tree.describe(rules_catalog)
    # Scoped to some accounts (the dirty-account path: every subquery narrowed to them), the same answer.
    some = ids[1:3]
    assert set(matching_account_ids(tree, ctx, account_ids=some)) == by_python & set(some)
