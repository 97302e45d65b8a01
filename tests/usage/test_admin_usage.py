"""The staff pages of usage: set-based standings equal the API, tenant isolation, read-only, query counts."""

from __future__ import annotations

import datetime
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import CustomerAccount, Role
from catalog.models import MeterWindow
from usage import selectors, services
from usage.models import UsageRollup

from .factories import event, give_grant, give_license, make_catalog

pytestmark = pytest.mark.django_db
LIST = "/admin/usage/usageaccount/"


def page(account: CustomerAccount) -> str:
    return f"{LIST}{account.pk}/change/"


def put_rollup(account: CustomerAccount, meter, value: int, day: datetime.date | None = None) -> None:
    UsageRollup.objects.update_or_create(
        tenant_id=account.tenant_id,
        account=account,
        meter=meter,
        day=day or timezone.now().date(),
        defaults={"value": value, "event_count": value},
    )


def ingest(tenant, *events: dict) -> None:
    result = services.ingest_events(tenant, events=list(events), actor="test")
    assert result.as_dict()["accepted"] == len(events), result.as_dict()


@pytest.fixture
def scenario(world_a):
    """Accounts in every situation the list must tell apart.

    - acct-1: Team + an API calls pack (limit 15,000), 12,000 used -> soft limit (80%)
    - free-1: no licence (the free tier), 1,000 of 1,000 calls -> hard limit; 3 SSO gate hits
    - trial-1: Free licence with a Business trial: unlimited calls, storage from Business
    - quiet-1: Team, almost nothing used
    Storage is metered per billing period, so licences' own periods are used.
    """
    tenant = world_a.tenant
    catalog = make_catalog(tenant)
    catalog.storage_meter.window = MeterWindow.BILLING_PERIOD
    catalog.storage_meter.save()
    team = world_a.account
    give_license(team, catalog.team, addons=[catalog.calls_pack])
    free = CustomerAccount.objects.create(tenant=tenant, external_id="free-1", name="Free One")
    trial = CustomerAccount.objects.create(tenant=tenant, external_id="trial-1", name="Trial One")
    give_license(trial, catalog.free)
    give_grant(trial, tier=catalog.business, ends_at=timezone.now() + datetime.timedelta(days=7))
    quiet = CustomerAccount.objects.create(tenant=tenant, external_id="quiet-1", name="Quiet One")
    give_license(quiet, catalog.team)

    put_rollup(team, catalog.api_meter, 12_000)
    put_rollup(free, catalog.api_meter, 1_000)
    put_rollup(free, catalog.api_meter, 700, day=timezone.now().date().replace(day=1) - datetime.timedelta(days=1))
    put_rollup(quiet, catalog.api_meter, 10)
    ingest(
        tenant,
        event("acct-1", "storage_used", gb=40),
        event("trial-1", "storage_used", gb=300),
        event("acct-1", "user_active", user_id="u1"),
        event("acct-1", "user_active", user_id="u2"),
        event("free-1", "user_active", user_id="u1"),
        *[event("free-1", "feature_gate_hit", feature="sso", reason="not_in_plan", quantity=1) for _ in range(3)],
    )
    return {"catalog": catalog, "team": team, "free": free, "trial": trial, "quiet": quiet}


def api_features(world, external_id: str) -> dict[str, dict]:
    response = world.api("read").get(f"/api/v1/accounts/{external_id}/entitlements")
    assert response.status_code == 200, response.content
    return {f["feature"]: f for f in response.json()["features"]}


# --- Selectors ---------------------------------------------------------------------------------


def test_set_based_standings_give_every_account_exactly_the_apis_entitlements(world_a, scenario):
    standings = selectors.account_standings(world_a.tenant)
    assert set(standings) == {a.pk for a in CustomerAccount.objects.for_tenant(world_a.tenant)}
    for key in ("team", "free", "trial", "quiet"):
        account = scenario[key]
        from_list = {s.feature: s.as_dict() for s in standings[account.pk].states}
        assert from_list == api_features(world_a, account.external_id), key


def test_standings_name_the_most_pressured_feature_the_worst_state_and_recent_gate_hits(world_a, scenario):
    standings = selectors.account_standings(world_a.tenant)
    team, free, trial, quiet = (standings[scenario[k].pk] for k in ("team", "free", "trial", "quiet"))
    assert (team.top.feature, team.top_percent, team.standing) == ("api_calls", 80, "soft_limit")
    assert (free.top.feature, free.top_percent, free.standing) == ("api_calls", 100, "hard_limit")
    assert (free.gate_hits, free.gate_hit_features) == (3, ("Single sign-on",))
    # The trial's Business overlay: unlimited calls, 300 of 1,000 GB.
    assert (trial.top.feature, trial.top_percent, trial.standing, trial.gate_hits) == ("storage", 30, "ok", 0)
    assert trial.plan.grant_labels and trial.plan.tier_key == "free"
    assert quiet.standing == "ok" and quiet.top_percent == 0


def test_usage_history_ends_at_the_tables_used_and_restarts_each_calendar_month(world_a, scenario):
    free = scenario["free"]
    overview = selectors.account_usage_overview(world_a.tenant, account=free)
    used = {row.state.feature: row.state.used for row in overview.rows}
    series = {s.feature: s for s in overview.series}
    assert set(series) == {"api_calls", "storage", "active_users"}
    for key, s in series.items():
        assert len(s.days) == 90 and s.counted[-1] == used[key], key
    calls = series["api_calls"]
    last_of_previous_month = timezone.now().date().replace(day=1) - datetime.timedelta(days=1)
    i = calls.days.index(last_of_previous_month)
    assert calls.daily[i] == 700 and calls.counted[i] == 700  # last month's own total
    assert calls.counted[-1] == 1_000 and calls.limit == 1_000 and calls.soft_limit_at == 800
    states = {row.state.feature: row for row in overview.rows}
    assert states["api_calls"].upgrade.key == "team"  # the next tier up allows more
    assert states["sso"].state.state == "locked" and states["sso"].upgrade is not None


def test_a_billing_period_meters_chart_counts_a_day_before_the_renewal_from_the_period_before(world_a):
    # The licence renewed on 10 Nov (period 10 Nov - 10 Dec); the one before began on 10 Oct. 9 Nov counts
    # 10 Oct - 9 Nov (500), not the calendar month (200), as the trigger rules count it; the renewal day
    # starts again from zero.
    now = datetime.datetime(2026, 11, 20, 12, tzinfo=datetime.UTC)
    catalog = make_catalog(world_a.tenant)
    catalog.api_meter.window = MeterWindow.BILLING_PERIOD
    catalog.api_meter.save()
    give_license(world_a.account, catalog.team, now=now)
    put_rollup(world_a.account, catalog.api_meter, 300, day=datetime.date(2026, 10, 10))
    put_rollup(world_a.account, catalog.api_meter, 200, day=datetime.date(2026, 11, 9))
    put_rollup(world_a.account, catalog.api_meter, 40, day=datetime.date(2026, 11, 10))
    overview = selectors.account_usage_overview(world_a.tenant, account=world_a.account, now=now)
    calls = next(s for s in overview.series if s.feature == "api_calls")
    counted = dict(zip(calls.days, calls.counted, strict=True))
    assert counted[datetime.date(2026, 10, 9)] == 0  # before the period before: by calendar month
    assert counted[datetime.date(2026, 10, 10)] == 300
    assert counted[datetime.date(2026, 11, 9)] == 500
    assert counted[datetime.date(2026, 11, 10)] == 40 and counted[datetime.date(2026, 11, 20)] == 40


# --- The admin list ------------------------------------------------------------------------------


def test_the_list_shows_only_this_tenants_accounts_with_their_tier_and_pressure(two_tenants):
    a, b = two_tenants
    make_catalog(a.tenant)
    make_catalog(b.tenant)
    CustomerAccount.objects.create(tenant=b.tenant, external_id="only-b", name="Bee Secret Customer")
    response = a.staff_client(Role.ANALYST).get(LIST)
    assert response.status_code == 200
    body = response.content.decode()
    assert a.account.name in body
    assert b.account.name not in body and "Bee Secret" not in body and "only-b" not in body
    assert [o.pk for o in response.context["cl"].result_list] == [a.account.pk]


def test_the_list_sorts_most_pressured_first_and_filters_by_standing(world_a, scenario):
    client = world_a.staff_client(Role.CSM)

    def listed(query: str = "") -> list[str]:
        response = client.get(LIST + query)
        assert response.status_code == 200
        return [o.external_id for o in response.context["cl"].result_list]

    assert listed() == ["free-1", "acct-1", "trial-1", "quiet-1"]
    assert listed("?standing=hard_limit") == ["free-1"]
    assert listed("?standing=soft_limit") == ["acct-1"]
    assert listed("?standing=ok") == ["trial-1", "quiet-1"]
    assert listed("?standing=locked_hits") == ["free-1"]
    body = client.get(LIST).content.decode()
    assert "API calls <strong>100%</strong>" in body and "Single sign-on" in body


def test_the_list_costs_the_same_number_of_queries_for_4_or_40_accounts(
    world_a, scenario, django_assert_max_num_queries
):
    client = world_a.staff_client(Role.OWNER)
    with CaptureQueriesContext(connection) as few:
        assert client.get(LIST).status_code == 200
    catalog = scenario["catalog"]
    for i in range(36):
        account = CustomerAccount.objects.create(tenant=world_a.tenant, external_id=f"more-{i}", name=f"More {i}")
        if i % 2:
            give_license(account, catalog.team if i % 4 == 1 else catalog.business)
        put_rollup(account, catalog.api_meter, i * 10)
    with django_assert_max_num_queries(len(few)):
        response = client.get(LIST + "?all=")
    assert len(response.context["cl"].result_list) == 40


# --- One account's page ----------------------------------------------------------------------------


def test_the_account_page_shows_entitlements_grants_gate_hits_events_and_chart_data(world_a, scenario):
    response = world_a.staff_client(Role.ANALYST).get(page(scenario["free"]))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-feature="api_calls" data-state="hard_limit"' in body
    assert 'data-feature="sso" data-state="locked"' in body
    assert body.count('data-testid="gate-hit"') == 3
    chart = json.loads(body.split('id="tw-usage-data" type="application/json">')[1].split("</script>")[0])
    calls = next(s for s in chart if s["feature"] == "api_calls")
    assert calls["limit"] == 1000 and calls["counted"][-1] == 1000 and len(calls["days"]) == 90
    events = response.context["overview"].events
    assert [e.occurred_at for e in events] == sorted((e.occurred_at for e in events), reverse=True)
    assert len(events) == 4  # 3 gate hits + 1 active user (rollups put directly have no events)

    trial = world_a.staff_client(Role.ANALYST).get(page(scenario["trial"])).content.decode()
    assert 'data-testid="grant" data-status="active"' in trial and "from Business" in trial


def test_the_account_page_filters_recent_events_by_name(world_a, scenario):
    response = world_a.staff_client(Role.ANALYST).get(page(scenario["free"]) + "?event=user_active")
    assert [e.event for e in response.context["overview"].events] == ["user_active"]


def test_another_tenants_account_does_not_open_and_leaks_nothing(two_tenants):
    a, b = two_tenants
    make_catalog(b.tenant)
    secret = CustomerAccount.objects.create(tenant=b.tenant, external_id="only-b", name="Bee Secret Customer")
    client = a.staff_client(Role.OWNER)
    for url in (page(b.account), page(secret), f"{LIST}by-external-id/only-b/", f"{page(secret)}history/"):
        response = client.get(url, follow=True)
        body = response.content.decode()
        assert response.redirect_chain and response.redirect_chain[-1][0] == "/admin/", url
        assert "Bee Secret" not in body and b.account.name not in body, url
    # The same external id in the other tenant opens this tenant's own account.
    response = client.get(f"{LIST}by-external-id/acct-1/")
    assert response.status_code == 302 and response.url == page(a.account)


@pytest.mark.parametrize("role", Role.values)
def test_every_role_can_view_and_no_role_can_add_change_or_delete(world_a, scenario, role):
    client = world_a.staff_client(role)
    account = scenario["team"]
    assert client.get(LIST).status_code == 200
    assert client.get(page(account)).status_code == 200
    assert client.get(LIST + "add/").status_code == 403
    assert client.get(f"{LIST}{account.pk}/delete/").status_code == 403
    assert client.post(page(account), {"name": "Renamed"}).status_code == 405
    assert b'name="_save"' not in client.get(page(account)).content
    account.refresh_from_db()
    assert account.name != "Renamed"


def test_staff_of_no_tenant_see_nothing(db, django_user_model, client):
    user = django_user_model.objects.create_user("nobody@nowhere.test", "pw-for-tests-123")
    client.force_login(user)
    assert client.get(LIST).status_code in (302, 403)


def test_the_account_page_offers_change_plan_only_to_members_who_manage_billing(world_a, scenario):
    quiet = scenario["quiet"]
    owner = world_a.staff_client(Role.OWNER).get(page(quiet)).content.decode()
    assert 'data-testid="change-plan"' in owner
    assert f"/admin/billing/license/{quiet.license.pk}/change-plan/" in owner
    analyst = world_a.staff_client(Role.ANALYST).get(page(quiet)).content.decode()
    assert 'data-testid="change-plan"' not in analyst
    no_licence = world_a.staff_client(Role.OWNER).get(page(scenario["free"])).content.decode()
    assert 'data-testid="change-plan"' not in no_licence
