"""Effective entitlements, limit states, checks with upgrade hints, gate hits, and the cache."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import CustomerAccount
from billing.signals import license_changed
from catalog.models import Enforcement
from usage import cache, selectors
from usage.models import FEATURE_GATE_HIT_EVENT, Event, UsageRollup

from .factories import event, give_grant, give_license, make_catalog

pytestmark = pytest.mark.django_db
CHECK = "/api/v1/entitlements/check"


@pytest.fixture
def catalog(world_a):
    return make_catalog(world_a.tenant)


def set_usage(world, meter, value: int) -> None:
    """Usage as rollups say it (the ingest path is tested elsewhere); then the cache is told."""
    UsageRollup.objects.update_or_create(
        tenant=world.tenant,
        account=world.account,
        meter=meter,
        day=timezone.now().date(),
        defaults={"value": value, "event_count": value},
    )
    cache.invalidate([cache.USAGE], world.tenant.pk, [world.account.external_id])


def features(world, client=None) -> dict[str, dict]:
    response = (client or world.api("read")).get(f"/api/v1/accounts/{world.account.external_id}/entitlements")
    assert response.status_code == 200, response.content
    return {f["feature"]: f for f in response.json()["features"]}


def check(world, feature: str, quantity: int = 1, client=None) -> dict:
    response = (client or world.api("read")).post(
        CHECK, {"account": "acct-1", "feature": feature, "quantity": quantity}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def gate_hits(world) -> list[dict]:
    return list(
        Event.objects.for_tenant(world.tenant).filter(event=FEATURE_GATE_HIT_EVENT).values_list("properties", flat=True)
    )


# --- What the plan is ---------------------------------------------------------------------


def test_an_account_without_a_licence_gets_the_free_tier(world_a, catalog):
    response = world_a.api("read").get("/api/v1/accounts/acct-1/entitlements").json()
    assert response["tier"] == {"key": "free", "name": "Free"}
    by_key = {f["feature"]: f for f in response["features"]}
    assert by_key["api_calls"]["limit"] == 1000 and by_key["api_calls"]["used"] == 0
    assert by_key["api_calls"]["state"] == "ok" and by_key["api_calls"]["allowed"] is True
    assert by_key["api_calls"]["period_end"] is not None
    assert by_key["sso"]["allowed"] is False and by_key["sso"]["state"] == "locked"


def test_a_licence_tier_and_its_add_ons_combine(world_a, catalog):
    give_license(world_a.account, catalog.team, addons=[catalog.calls_pack, catalog.sso_addon])
    by_key = features(world_a)
    assert by_key["api_calls"]["limit"] == 15_000  # the pack adds to the tier
    assert by_key["sso"]["allowed"] is True


@pytest.mark.parametrize("status", ["canceled", "suspended"])
def test_a_cancelled_or_suspended_licence_falls_back_to_the_free_tier(world_a, catalog, status):
    give_license(world_a.account, catalog.business, status=status)
    assert features(world_a)["api_calls"]["limit"] == 1000


def test_an_active_trial_grant_overlays_the_licence_and_its_expiry_is_not_served_stale(world_a, catalog):
    give_license(world_a.account, catalog.team)
    now = timezone.now()
    give_grant(world_a.account, tier=catalog.business, ends_at=now + datetime.timedelta(hours=1))
    during = selectors.get_account_entitlements(world_a.tenant, account=world_a.account, now=now)
    assert during.plan.features["sso"].enabled is True
    assert during.plan.features["api_calls"].limit is None
    # No signal fires when a grant simply runs out: the cached plan must not outlive it.
    after = selectors.get_account_entitlements(
        world_a.tenant, account=world_a.account, now=now + datetime.timedelta(hours=1, seconds=1)
    )
    assert after.plan.features["sso"].enabled is False
    assert after.plan.features["api_calls"].limit == 10_000


def test_a_future_grant_starts_on_time_even_with_a_warm_cache(world_a, catalog):
    now = timezone.now()
    give_grant(
        world_a.account,
        addon=catalog.sso_addon,
        starts_at=now + datetime.timedelta(minutes=10),
        ends_at=now + datetime.timedelta(days=14),
    )
    before = selectors.get_account_entitlements(world_a.tenant, account=world_a.account, now=now)
    assert before.plan.features["sso"].enabled is False
    later = selectors.get_account_entitlements(
        world_a.tenant, account=world_a.account, now=now + datetime.timedelta(minutes=11)
    )
    assert later.plan.features["sso"].enabled is True


# --- States at and around the limits ----------------------------------------------------------


@pytest.mark.parametrize(
    ("used", "state", "allowed"),
    [
        (0, "ok", True),
        (799, "ok", True),
        (800, "soft_limit", True),  # 80 % of 1,000
        (999, "soft_limit", True),
        (1000, "hard_limit", False),
        (1500, "hard_limit", False),
    ],
)
def test_feature_state_at_and_around_the_limits(world_a, catalog, used, state, allowed):
    set_usage(world_a, catalog.api_meter, used)
    api = features(world_a)["api_calls"]
    assert (api["used"], api["state"], api["allowed"]) == (used, state, allowed)
    assert api["remaining"] == max(1000 - used, 0)
    assert api["soft_limit_at"] == 800


@pytest.mark.parametrize(
    ("used", "quantity", "allowed", "reason", "hint"),
    [
        (100, 1, True, "ok", None),
        (799, 1, True, "soft_limit", "team"),
        (998, 1, True, "soft_limit", "team"),
        (999, 1, True, "limit_reached_by_this_use", "team"),
        (1000, 1, False, "limit_reached", "team"),
        (900, 101, False, "limit_reached", "team"),
        (900, 100, True, "limit_reached_by_this_use", "team"),
        (100, 50_000, False, "limit_reached", "business"),  # Team's 10,000 wouldn't do
    ],
)
def test_checks_at_and_around_a_hard_limit(world_a, catalog, used, quantity, allowed, reason, hint):
    set_usage(world_a, catalog.api_meter, used)
    answer = check(world_a, "api_calls", quantity)
    assert (answer["allowed"], answer["reason"]) == (allowed, reason)
    assert (answer["upgrade"] or {}).get("key") == hint
    assert answer["used"] == used and answer["limit"] == 1000
    assert len(gate_hits(world_a)) == (0 if allowed else 1)


def test_a_soft_limit_allows_overage_with_a_hint_and_records_no_gate_hit(world_a, catalog):
    give_license(world_a.account, catalog.team)
    set_usage(world_a, catalog.api_meter, 10_000)
    answer = check(world_a, "api_calls")
    # Issue 12 item 6: "allowed": true with "state": "hard_limit" contradicted itself.
    assert answer["allowed"] is True and answer["reason"] == "over_soft_limit" and answer["state"] == "soft_limit"
    assert answer["upgrade"]["key"] == "business"
    assert gate_hits(world_a) == []
    listed = features(world_a)["api_calls"]
    assert (listed["allowed"], listed["state"]) == (True, "soft_limit")


def test_reaching_a_soft_limit_exactly_is_soft_limit_and_a_hard_one_hard_limit(world_a, world_b):
    soft = make_catalog(world_a.tenant)
    give_license(world_a.account, soft.team)
    set_usage(world_a, soft.api_meter, 9_999)
    assert (check(world_a, "api_calls")["state"], check(world_a, "api_calls")["allowed"]) == ("soft_limit", True)
    hard = make_catalog(world_b.tenant, team_enforcement=Enforcement.HARD)
    give_license(world_b.account, hard.team)
    set_usage(world_b, hard.api_meter, 9_999)
    answer = check(world_b, "api_calls")
    assert (answer["state"], answer["allowed"], answer["reason"]) == ("hard_limit", True, "limit_reached_by_this_use")


def test_a_hard_team_limit_denies(world_b):
    catalog = make_catalog(world_b.tenant, team_enforcement=Enforcement.HARD)
    give_license(world_b.account, catalog.team)
    set_usage(world_b, catalog.api_meter, 10_000)
    assert check(world_b, "api_calls")["allowed"] is False


def test_a_locked_feature_is_denied_recorded_as_a_gate_hit_and_hinted(world_a, catalog):
    answer = check(world_a, "sso")
    assert answer["allowed"] is False and answer["reason"] == "not_in_plan" and answer["state"] == "locked"
    assert answer["upgrade"] == {"kind": "tier", "key": "business", "name": "Business", "limit": None}
    assert gate_hits(world_a) == [{"feature": "sso", "quantity": 1, "reason": "not_in_plan"}]
    hit = Event.objects.for_tenant(world_a.tenant).get(event=FEATURE_GATE_HIT_EVENT)
    assert hit.account_id == world_a.account.pk


def test_a_boolean_feature_in_the_plan_is_allowed(world_a, catalog):
    give_license(world_a.account, catalog.business)
    assert check(world_a, "sso") | {"upgrade": None} == check(world_a, "sso")
    assert check(world_a, "sso")["allowed"] is True


def test_max_and_unique_meters_report_their_own_numbers(world_a, catalog):
    client = world_a.api("ingest")
    client.post(
        "/api/v1/events",
        {
            "events": [
                event(name="storage_used", gb=3),
                event(name="storage_used", gb=4),
                event(name="storage_used", gb=2),
                event(name="user_active", user_id="a"),
                event(name="user_active", user_id="b"),
                event(name="user_active", user_id="a"),
            ]
        },
        format="json",
    )
    by_key = features(world_a)
    assert by_key["storage"]["used"] == 4 and by_key["storage"]["state"] == "soft_limit"  # 80 % of 5 is 4
    assert by_key["active_users"]["used"] == 2 and by_key["active_users"]["limit"] == 3


# --- Input, keys, tenants ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"feature": "sso"}, "account"),
        ({"account": "acct-1"}, "feature"),
        ({"account": "acct-1", "feature": "sso", "quantity": -1}, "quantity"),
        ({"account": "acct-1", "feature": "sso", "quantity": "2"}, "quantity"),
        ({"account": "acct-1", "feature": "nope"}, "feature"),
    ],
)
def test_bad_check_input_is_400_naming_the_field(world_a, catalog, body, field):
    response = world_a.api("read").post(CHECK, body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]
    assert gate_hits(world_a) == []


def test_entitlement_endpoints_need_the_read_scope(world_a, catalog):
    client = world_a.api("ingest")
    assert client.get("/api/v1/accounts/acct-1/entitlements").status_code == 403
    assert client.post(CHECK, {"account": "acct-1", "feature": "sso"}, format="json").status_code == 403
    assert gate_hits(world_a) == []


def test_another_tenants_accounts_are_404_on_every_entitlement_endpoint(two_tenants):
    a, b = two_tenants
    make_catalog(a.tenant)
    make_catalog(b.tenant)
    CustomerAccount.objects.create(tenant=b.tenant, external_id="only-b", name="B only")
    client = a.api("read")
    response = client.get("/api/v1/accounts/only-b/entitlements")
    assert response.status_code == 404 and "only-b" not in str(response.json()["error"].get("details"))
    response = client.post(CHECK, {"account": "only-b", "feature": "sso"}, format="json")
    assert response.status_code == 404
    assert not Event.objects.for_tenant(b.tenant).exists()


def test_look_alike_accounts_get_their_own_tenants_plan(two_tenants):
    a, b = two_tenants
    catalog_a = make_catalog(a.tenant)
    catalog_b = make_catalog(b.tenant)
    give_license(b.account, catalog_b.business)
    set_usage(a, catalog_a.api_meter, 1000)
    assert check(a, "sso")["allowed"] is False
    assert check(b, "sso")["allowed"] is True
    assert check(b, "api_calls")["used"] == 0
    assert len(gate_hits(a)) == 1 and gate_hits(b) == []


# --- The cache ---------------------------------------------------------------------------------


def test_ingest_invalidates_the_cached_usage(world_a, catalog, django_capture_on_commit_callbacks):
    assert check(world_a, "api_calls")["used"] == 0
    with django_capture_on_commit_callbacks(execute=True):
        world_a.api("ingest").post("/api/v1/events", {"events": [event(), event()]}, format="json")
    assert check(world_a, "api_calls")["used"] == 2


def test_a_licence_change_invalidates_the_cached_plan(world_a, catalog):
    assert check(world_a, "sso")["allowed"] is False
    give_license(world_a.account, catalog.business)
    assert check(world_a, "sso")["allowed"] is False  # cached, and billing hasn't said anything yet
    license_changed.send(sender=None, tenant_id=world_a.tenant.pk, account_id=world_a.account.pk)
    assert check(world_a, "sso")["allowed"] is True


def test_a_licence_change_invalidates_only_that_account(world_a, catalog):
    other = CustomerAccount.objects.create(tenant=world_a.tenant, external_id="acct-2", name="Two")
    selectors.get_account_entitlements(world_a.tenant, account=other)
    before = cache.lookup(world_a.tenant.pk, other.external_id, now=timezone.now())
    license_changed.send(sender=None, tenant_id=world_a.tenant.pk, account_id=world_a.account.pk)
    after = cache.lookup(world_a.tenant.pk, other.external_id, now=timezone.now())
    assert after.plan is not None and after.plan_version == before.plan_version


def test_a_reader_racing_an_invalidation_cannot_put_a_stale_answer_back(world_a, catalog):
    now = timezone.now()
    racing = cache.lookup(world_a.tenant.pk, "acct-1", now=now)  # the reader read the old token ...
    stale = selectors.compute_plan(world_a.tenant, account=world_a.account, now=now)  # ... and the old rows
    give_license(world_a.account, catalog.business)
    license_changed.send(sender=None, tenant_id=world_a.tenant.pk, account_id=world_a.account.pk)
    cache.store(
        cache.PLAN,
        world_a.tenant.pk,
        "acct-1",
        version=racing.plan_version,
        value=stale,
        valid_until=stale.valid_until,
        now=now,
    )  # ... and stores late
    fresh = selectors.get_account_entitlements(world_a.tenant, account=world_a.account)
    assert fresh.plan.tier_key == "business"


def test_a_warm_check_reads_no_table(world_a, catalog, django_assert_max_num_queries):
    client = world_a.api("read")
    check(world_a, "api_calls", client=client)  # warm: plan and usage cached
    # Only the API key (accounts' auth: read inside the tenant its prefix is remembered in) remains;
    # the answer itself comes from the cache.
    with django_assert_max_num_queries(1) as queries:
        assert check(world_a, "api_calls", client=client)["allowed"] is True
    assert all("accounts_apikey" in q["sql"] for q in queries.captured_queries), queries.captured_queries


def test_a_deleted_account_is_not_answered_from_the_cache(world_a, catalog, django_capture_on_commit_callbacks):
    other = CustomerAccount.objects.create(tenant=world_a.tenant, external_id="gone-soon", name="Gone")
    client = world_a.api("read")
    events = [event("gone-soon"), event("gone-soon", name="user_active", user_id="u1")]
    assert world_a.api("ingest").post("/api/v1/events", {"events": events}, format="json").json()["accepted"] == 2
    assert client.get("/api/v1/accounts/gone-soon/entitlements").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        other.delete()  # its events, rollups and unique values go with it
    assert not Event.objects.for_tenant(world_a.tenant).filter(account_id=other.pk).exists()
    assert not UsageRollup.objects.for_tenant(world_a.tenant).filter(account_id=other.pk).exists()
    assert client.get("/api/v1/accounts/gone-soon/entitlements").status_code == 404
    response = client.post(CHECK, {"account": "gone-soon", "feature": "sso"}, format="json")
    assert response.status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer tw_nope_nope", "Bearer not-a-key"])
def test_entitlement_endpoints_refuse_missing_or_unknown_keys(world_a, catalog, header):
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    assert client.get("/api/v1/accounts/acct-1/entitlements").status_code == 401
    assert client.post(CHECK, {"account": "acct-1", "feature": "sso"}, format="json").status_code == 401
    assert gate_hits(world_a) == []


def test_a_renamed_account_is_not_answered_under_its_old_external_id(
    world_a, catalog, django_capture_on_commit_callbacks
):
    """Issue 11 item 11: the old id's cached answer (Business, SSO on) outlived the rename."""
    world_a.tenant.auto_create_accounts = True
    world_a.tenant.save()
    give_license(world_a.account, catalog.business)
    client = world_a.api("read")
    assert check(world_a, "sso", client=client)["allowed"] is True  # cached under acct-1
    with django_capture_on_commit_callbacks(execute=True):
        account = CustomerAccount.objects.get(pk=world_a.account.pk)
        account.external_id = "acct-renamed"
        account.save()
    assert client.post(CHECK, {"account": "acct-1", "feature": "sso"}, format="json").status_code == 404
    # A new account taking the old id (auto-created by ingest) gets its own (free) plan, not the cached one.
    with django_capture_on_commit_callbacks(execute=True):
        body = world_a.api("ingest").post("/api/v1/events", {"events": [event("acct-1")]}, format="json").json()
    assert body["accepted"] == 1
    assert check(world_a, "sso", client=client)["allowed"] is False
    renamed = client.post(CHECK, {"account": "acct-renamed", "feature": "sso"}, format="json").json()
    assert renamed["allowed"] is True


def test_an_auto_created_account_invalidates_answers_cached_under_its_external_id(
    world_a, catalog, django_capture_on_commit_callbacks
):
    """bulk_create sends no post_save: an entry cached under the id before (a deleted account's) must go."""
    world_a.tenant.auto_create_accounts = True
    world_a.tenant.save()
    doomed = CustomerAccount.objects.create(tenant=world_a.tenant, external_id="comes-back", name="Old")
    give_license(doomed, catalog.business)
    client = world_a.api("read")
    answer = client.post(CHECK, {"account": "comes-back", "feature": "sso"}, format="json").json()
    assert answer["allowed"] is True
    # Deleted with its invalidation lost (no on_commit run here): the entry under "comes-back" survives ...
    CustomerAccount.objects.filter(pk=doomed.pk).delete()
    with django_capture_on_commit_callbacks(execute=True):
        body = world_a.api("ingest").post("/api/v1/events", {"events": [event("comes-back")]}, format="json").json()
    assert body["accepted"] == 1
    # ... and the auto-created account's invalidation removes it.
    answer = client.post(CHECK, {"account": "comes-back", "feature": "sso"}, format="json").json()
    assert answer["allowed"] is False
