"""Each condition kind at its boundaries, through both evaluators (SQL and Python) at once."""

from __future__ import annotations

import datetime

import pytest

from accounts.models import CustomerAccount
from tests.upgrades.rules.conftest import NOW, add_event, distinct, rollup
from tests.usage.factories import give_grant
from upgrades.rules.conditions import ConditionError, EvalContext, parse_condition
from upgrades.rules.data import load_account_data, load_rule_catalog, refresh_limits
from upgrades.rules.engine import matching_account_ids

DAY = datetime.timedelta(days=1)


def holds(account: CustomerAccount, condition: dict, *, now: datetime.datetime = NOW) -> bool:
    """Both evaluators' answer for one account; they must agree."""
    tenant = account.tenant
    catalog = load_rule_catalog(tenant)
    tree = parse_condition(condition, catalog)
    ctx = EvalContext(tenant_id=tenant.pk, now=now, time_zone=tenant.time_zone, catalog=catalog)
    refresh_limits(tenant, account_ids=[account.pk], meter_ids={m.id for m in catalog.meters.values()}, now=now)
    by_sql = account.pk in matching_account_ids(tree, ctx)
    data = load_account_data(tenant, account_ids=[account.pk], conditions=[tree], ctx=ctx)[account.pk]
    by_python = tree.evaluate(data, ctx).matched
    assert by_sql == by_python, f"SQL says {by_sql}, Python says {by_python}: {tree.describe(catalog)}"
    return by_python


def test_utilisation_now_fires_at_exactly_the_threshold_and_not_one_call_below(world_a, cat_a):
    # Team allows 10,000 API calls a calendar month; 9,000 is 90%.
    rollup(world_a.account, cat_a.api_meter, NOW.date().replace(day=1), 4000)
    rollup(world_a.account, cat_a.api_meter, NOW.date(), 4999)
    condition = {"kind": "meter_utilisation", "meter": "api_calls", "percent": 90}
    assert not holds(world_a.account, condition)
    rollup(world_a.account, cat_a.api_meter, NOW.date(), 5000)
    assert holds(world_a.account, condition)


def test_utilisation_counts_only_the_current_calendar_month(world_a, cat_a):
    rollup(world_a.account, cat_a.api_meter, NOW.date().replace(day=1) - DAY, 50_000)
    assert not holds(world_a.account, {"kind": "meter_utilisation", "meter": "api_calls", "percent": 10})


def test_utilisation_k_of_n_days_needs_k_days_over_the_threshold(world_a, cat_a):
    # Window-to-date usage crosses 90% of 10,000 on the 16th; "now" is the 20th: 5 days over (16..20).
    for day in range(14, 21):
        rollup(world_a.account, cat_a.api_meter, datetime.date(2026, 11, day), 3000)
    five = {"kind": "meter_utilisation", "meter": "api_calls", "percent": 90, "days": 7, "min_days": 5}
    six = {**five, "min_days": 6}
    assert holds(world_a.account, five)
    assert not holds(world_a.account, six)


def test_utilisation_uses_the_effective_limit_with_an_add_on_pack(world_a, cat_a):
    world_a.account.license.addons.set([cat_a.calls_pack])  # 10,000 + 5,000
    rollup(world_a.account, cat_a.api_meter, NOW.date(), 10_000)
    assert not holds(world_a.account, {"kind": "meter_utilisation", "meter": "api_calls", "percent": 90})
    assert holds(world_a.account, {"kind": "meter_utilisation", "meter": "api_calls", "percent": 66})


def test_utilisation_never_fires_for_unlimited_plans(world_a, cat_a):
    lic = world_a.account.license
    lic.tier = cat_a.business  # unlimited API calls
    lic.save()
    rollup(world_a.account, cat_a.api_meter, NOW.date(), 10**9)
    assert not holds(world_a.account, {"kind": "meter_utilisation", "meter": "api_calls", "percent": 1})


def test_unique_count_utilisation_counts_distinct_users_over_the_rolling_window(world_a, cat_a):
    # Team: 25 active users over a rolling 30 days; the same user on two days counts once.
    distinct(world_a.account, cat_a.users_meter, NOW.date() - 3 * DAY, *[f"u{i}" for i in range(20)])
    distinct(world_a.account, cat_a.users_meter, NOW.date(), *[f"u{i}" for i in range(15, 22)])
    condition = {"kind": "meter_utilisation", "meter": "active_users", "percent": 88}  # 22 of 25
    assert holds(world_a.account, condition)
    assert not holds(world_a.account, {**condition, "percent": 89})


def test_seats_used_compares_the_meter_with_seats_bought(world_a, cat_a):
    distinct(world_a.account, cat_a.users_meter, NOW.date(), *[f"u{i}" for i in range(4)])  # 4 of 5 seats
    assert holds(world_a.account, {"kind": "seats_used", "meter": "active_users", "percent": 80})
    assert not holds(world_a.account, {"kind": "seats_used", "meter": "active_users", "percent": 81})


def test_growth_week_over_week_boundary(world_a, cat_a):
    for i in range(7):
        rollup(world_a.account, cat_a.api_meter, NOW.date() - (7 + i) * DAY, 100)  # previous week: 700
        rollup(world_a.account, cat_a.api_meter, NOW.date() - i * DAY, 150)  # this week: 1,050 = +50%
    assert holds(world_a.account, {"kind": "meter_growth", "meter": "api_calls", "percent": 50, "days": 7})
    assert not holds(world_a.account, {"kind": "meter_growth", "meter": "api_calls", "percent": 51, "days": 7})


def test_growth_needs_a_previous_window_with_usage(world_a, cat_a):
    rollup(world_a.account, cat_a.api_meter, NOW.date(), 1000)
    assert not holds(world_a.account, {"kind": "meter_growth", "meter": "api_calls", "percent": 1, "days": 7})


def test_usage_fall_fires_when_usage_stops_entirely(world_a, cat_a):
    for i in range(14, 28):
        rollup(world_a.account, cat_a.api_meter, NOW.date() - i * DAY, 100)
    assert holds(world_a.account, {"kind": "usage_fall", "meter": "api_calls", "percent": 100, "days": 14})
    rollup(world_a.account, cat_a.api_meter, NOW.date(), 1)
    assert not holds(world_a.account, {"kind": "usage_fall", "meter": "api_calls", "percent": 100, "days": 14})
    assert holds(world_a.account, {"kind": "usage_fall", "meter": "api_calls", "percent": 99, "days": 14})


def test_meter_value_at_most_holds_for_an_account_without_any_usage(world_a, cat_a):
    assert holds(world_a.account, {"kind": "meter_value", "meter": "api_calls", "op": "at_most", "value": 0, "days": 7})
    rollup(world_a.account, cat_a.api_meter, NOW.date() - 6 * DAY, 1)
    assert not holds(world_a.account, {"kind": "meter_value", "meter": "api_calls", "op": "at_most", "value": 0,
                                       "days": 7})  # fmt: skip
    assert holds(
        world_a.account, {"kind": "meter_value", "meter": "api_calls", "op": "at_least", "value": 1, "days": 7}
    )


def test_rollups_after_now_are_never_read(world_a, cat_a):
    rollup(world_a.account, cat_a.api_meter, NOW.date() + DAY, 50_000)
    assert not holds(world_a.account, {"kind": "meter_value", "meter": "api_calls", "op": "at_least", "value": 1,
                                       "days": 7})  # fmt: skip


def test_gate_hits_count_only_the_named_feature(world_a, cat_a):
    add_event(world_a.account, "feature_gate_hit", NOW - DAY, feature="sso")
    add_event(world_a.account, "feature_gate_hit", NOW - DAY, feature="storage")
    assert holds(world_a.account, {"kind": "gate_hits", "feature": "sso", "min_count": 1, "days": 7})
    assert not holds(world_a.account, {"kind": "gate_hits", "feature": "sso", "min_count": 2, "days": 7})


@pytest.mark.parametrize(
    ("zone", "at", "inside"),
    [
        # Tenant in New York; now = 20 Nov 15:00 UTC = 10:00 local. "Last 2 days" starts 19 Nov 00:00 local
        # = 19 Nov 05:00 UTC.
        ("America/New_York", datetime.datetime(2026, 11, 19, 5, 0, tzinfo=datetime.UTC), True),
        ("America/New_York", datetime.datetime(2026, 11, 19, 4, 59, 59, tzinfo=datetime.UTC), False),
        # The same instant for a UTC tenant is inside its window (19 Nov 00:00 UTC onwards).
        ("UTC", datetime.datetime(2026, 11, 19, 4, 59, 59, tzinfo=datetime.UTC), True),
        ("UTC", datetime.datetime(2026, 11, 18, 23, 59, 59, tzinfo=datetime.UTC), False),
        # Auckland (UTC+13 in November): now is 21 Nov 04:00 local; the window starts 20 Nov 00:00 local
        # = 19 Nov 11:00 UTC.
        ("Pacific/Auckland", datetime.datetime(2026, 11, 19, 11, 0, tzinfo=datetime.UTC), True),
        ("Pacific/Auckland", datetime.datetime(2026, 11, 19, 10, 59, tzinfo=datetime.UTC), False),
    ],
)
def test_event_windows_start_at_the_tenants_local_midnight(world_a, cat_a, zone, at, inside):
    world_a.tenant.time_zone = zone
    world_a.tenant.save()
    add_event(world_a.account, "login", at)
    assert holds(world_a.account, {"kind": "event_seen", "event": "login", "days": 2}) is inside
    assert holds(world_a.account, {"kind": "event_seen", "event": "login", "days": 2, "seen": False}) is not inside


def test_events_after_now_are_never_read(world_a, cat_a):
    add_event(world_a.account, "support.ticket", NOW + datetime.timedelta(seconds=1))
    assert not holds(world_a.account, {"kind": "support_tickets", "min_count": 1, "days": 30})


def test_support_tickets_threshold(world_a, cat_a):
    for h in range(3):
        add_event(world_a.account, "support.ticket", NOW - datetime.timedelta(hours=h))
    assert holds(world_a.account, {"kind": "support_tickets", "min_count": 3, "days": 1})
    assert not holds(world_a.account, {"kind": "support_tickets", "min_count": 4, "days": 1})


def test_survey_answer_nps_at_most_six_ignores_other_surveys_and_non_numbers(world_a, cat_a):
    condition = {"kind": "survey_answer", "survey": "nps", "op": "at_most", "score": 6, "days": 90}
    add_event(world_a.account, "survey.answered", NOW - DAY, survey="csat", score=2)
    add_event(world_a.account, "survey.answered", NOW - DAY, survey="nps", score="five")
    add_event(world_a.account, "survey.answered", NOW - DAY, survey="nps", score=7)
    assert not holds(world_a.account, condition)
    add_event(world_a.account, "survey.answered", NOW - DAY, survey="nps", score=6)
    assert holds(world_a.account, condition)


def test_trial_ends_within_n_days(world_a, cat_a):
    give_grant(world_a.account, tier=cat_a.business, starts_at=NOW - DAY, ends_at=NOW + 3 * DAY)
    assert holds(world_a.account, {"kind": "trial_ends", "days": 3})
    assert not holds(world_a.account, {"kind": "trial_ends", "days": 2})


def test_renewal_within_n_days_only_for_licences_in_force(world_a, cat_a):
    lic = world_a.account.license  # period ends NOW + 20 days (factory)
    assert holds(world_a.account, {"kind": "renewal_within", "days": 20})
    assert not holds(world_a.account, {"kind": "renewal_within", "days": 19})
    lic.status = "canceled"
    lic.save()
    assert not holds(world_a.account, {"kind": "renewal_within", "days": 20})


def test_account_attributes_and_plan_tier(world_a, cat_a):
    assert holds(
        world_a.account, {"kind": "account_attribute", "field": "industry", "op": "is", "values": ["software"]}
    )
    assert holds(world_a.account, {"kind": "account_attribute", "field": "tier", "op": "is", "values": ["team"]})
    assert holds(world_a.account, {"kind": "account_attribute", "field": "territory", "op": "is_not",
                                   "values": ["EMEA"]})  # fmt: skip
    csm = world_a.staff["csm"]
    assert not holds(world_a.account, {"kind": "account_attribute", "field": "assigned_csm", "op": "is",
                                       "values": [csm.email]})  # fmt: skip
    world_a.account.assigned_csm = csm
    world_a.account.save()
    assert holds(world_a.account, {"kind": "account_attribute", "field": "assigned_csm", "op": "is",
                                   "values": [csm.email]})  # fmt: skip


def test_not_and_any_compose(world_a, cat_a):
    industry = {"kind": "account_attribute", "field": "industry", "op": "is", "values": ["software"]}
    tickets = {"kind": "support_tickets", "min_count": 1, "days": 7}
    assert holds(world_a.account, {"any": [industry, tickets]})
    assert not holds(world_a.account, {"all": [industry, tickets]})
    assert holds(world_a.account, {"all": [industry, {"not": tickets}]})


def test_the_tree_reads_as_plain_words(world_a, cat_a):
    tree = parse_condition(
        {"all": [
            {"kind": "meter_utilisation", "meter": "api_calls", "percent": 90, "days": 7, "min_days": 5},
            {"kind": "account_attribute", "field": "industry", "op": "is", "values": ["healthcare"]},
        ]},
        load_rule_catalog(world_a.tenant),
    )  # fmt: skip
    assert tree.describe(load_rule_catalog(world_a.tenant)) == (
        "API calls at >= 90% of the limit on 5 of the last 7 days, and industry is healthcare"
    )


@pytest.mark.parametrize(
    ("condition", "path", "message"),
    [
        ({"kind": "meter_utilisation", "meter": "nope", "percent": 90}, "condition.meter", "Unknown meter 'nope'"),
        ({"kind": "meter_utilisation", "meter": "api_calls", "percent": 0}, "condition.percent", "between 1 and 1000"),
        ({"kind": "meter_utilisation", "meter": "api_calls", "percent": 90, "days": 3, "min_days": 5},
         "condition.min_days", "cannot happen in 3 days"),
        ({"all": []}, "condition.all", "This group is empty"),
        ({"any": [{"kind": "gate_hits", "feature": "sso", "min_count": 1, "days": 0}]}, "condition.any[0].days",
         "between 1 and 365"),
        ({"kind": "teleport"}, "condition.kind", "Unknown condition kind"),
        ({"all": [], "any": []}, "condition", "exactly one of all, any or not"),
        ({"kind": "account_attribute", "field": "segment", "op": "is", "values": ["huge"]}, "condition.values",
         "Unknown segment huge"),
        ({"kind": "gate_hits", "feature": "teleport", "days": 7}, "condition.feature", "Unknown feature"),
    ],
)  # fmt: skip
def test_bad_rules_get_clear_messages_with_where_they_are(world_a, cat_a, condition, path, message):
    with pytest.raises(ConditionError) as exc:
        parse_condition(condition, load_rule_catalog(world_a.tenant))
    assert any(e["path"] == path and message in e["message"] for e in exc.value.errors), exc.value.errors
