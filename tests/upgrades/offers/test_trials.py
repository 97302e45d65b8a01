"""Trials: the grant, the policy window, early wins, the sunset, conversion mid-trial, tenants and roles."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import pytest
from django.utils import timezone

from accounts.models import Role
from accounts.tenancy import tenant_context
from billing.models import GrantKind, License, LicenseGrant, PlanChange
from billing.services.licenses import end_grant, expire_grants
from catalog.models import Aggregation, Feature, FeatureKind, GovernanceState, Meter, MeterWindow, Price
from tests.upgrades.offers.conftest import make_live_settings
from tests.usage.factories import Catalog, _ent, event, give_license
from tests.usage.factories import make_catalog as make_usage_catalog
from upgrades.offers.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from upgrades.offers.models import Trial, TrialState, TrialWin
from upgrades.offers.services.trials import convert_trial_on_settle, end_due_trials, start_trial
from upgrades.offers.services.trials_wins import (
    get_trial_for_tenant,
    record_early_wins,
    record_wins_for_active_trials,
    trial_next_steps,
    trial_progress,
)
from usage.selectors import get_account_entitlements
from usage.services import ingest_events, record_feature_gate_hit

DAY = datetime.timedelta(days=1)


@dataclass
class TrialWorld:
    world: object
    catalog: Catalog
    exports: Feature
    exports_meter: Meter
    license: License

    @property
    def tenant(self):
        return self.world.tenant

    @property
    def account(self):
        return self.world.account


def make_trial_world(world, *, trial_days: int = 14, window_days: int = 180) -> TrialWorld:
    """Team licence; Business adds SSO and exports (metered, a meter of `export_created`)."""
    tenant = world.tenant
    with tenant_context(tenant):
        catalog = make_usage_catalog(tenant)
        exports = Feature.objects.create(
            tenant=tenant, product=catalog.product, key="exports", name="Exports", kind=FeatureKind.METERED, unit="rows"
        )
        meter = Meter.objects.create(
            tenant=tenant,
            feature=exports,
            key="exports",
            name="Exported rows",
            event_name="export_created",
            aggregation=Aggregation.SUM,
            property="rows",
            window=MeterWindow.CALENDAR_MONTH,
        )
        _ent(tenant, catalog.business, exports, limit=None)
        license_ = give_license(world.account, catalog.team)
        make_live_settings(tenant, trial_days=trial_days, trial_window_days=window_days)
    return TrialWorld(world=world, catalog=catalog, exports=exports, exports_meter=meter, license=license_)


@pytest.fixture
def tw(world_a) -> TrialWorld:
    return make_trial_world(world_a)


def _start(tw: TrialWorld, **kwargs) -> Trial:
    kwargs.setdefault("target_kind", "tier")
    kwargs.setdefault("target_key", "business")
    kwargs.setdefault("actor", tw.world.staff[Role.CSM])
    kwargs.setdefault("source", "csm")
    with tenant_context(tw.tenant):
        return start_trial(tw.tenant, account=tw.account, **kwargs)


# --- the grant -------------------------------------------------------------------------------------


def test_start_trial_grants_the_higher_tier_for_the_settings_days_on_top_of_the_paid_plan(tw):
    period = (tw.license.current_period_start, tw.license.current_period_end, tw.license.tier_id)
    trial = _start(tw)
    with tenant_context(tw.tenant):
        grant = LicenseGrant.objects.for_tenant(tw.tenant).get(pk=trial.grant_id)
        assert grant.kind == GrantKind.TRIAL and grant.tier_id == tw.catalog.business.pk
        assert grant.reference.startswith("trial:tier:business")
        assert grant.ends_at == trial.ends_at
        assert trial.ends_at - trial.starts_at == 14 * DAY
        assert trial.state == TrialState.ACTIVE and trial.source == "csm"
        assert trial.unlocked_features == ["exports", "sso"]
        # The trial is in the effective entitlements; the licence and its billing date are untouched.
        ents = get_account_entitlements(tw.tenant, account=tw.account)
        assert ents.plan.features["sso"].enabled and ents.plan.tier_key == "team"
        lic = License.objects.for_tenant(tw.tenant).get(pk=tw.license.pk)
        assert (lic.current_period_start, lic.current_period_end, lic.tier_id) == period


def test_explicit_days_and_an_add_on_trial(tw):
    trial = _start(tw, target_kind="addon", target_key="sso", days=7)
    assert trial.ends_at - trial.starts_at == 7 * DAY
    assert trial.unlocked_features == ["sso"]
    with tenant_context(tw.tenant):
        assert LicenseGrant.objects.for_tenant(tw.tenant).get(pk=trial.grant_id).addon_id == tw.catalog.sso_addon.pk


@pytest.mark.parametrize("days", [0, 91, -3, True])
def test_days_outside_the_policy_bounds_are_refused(tw, days):
    with pytest.raises(InvalidInput) as err:
        _start(tw, days=days)
    assert "days" in err.value.details
    with tenant_context(tw.tenant):
        assert not Trial.objects.for_tenant(tw.tenant).exists()


def test_a_tier_the_paid_plan_already_has_or_beats_is_refused(tw):
    for key in ("team", "free"):
        with pytest.raises(InvalidInput) as err:
            _start(tw, target_key=key)
        assert err.value.code == "trial_not_allowed" and "tier" in err.value.details


def test_an_add_on_already_held_is_refused(tw):
    with tenant_context(tw.tenant):
        tw.license.addons.add(tw.catalog.sso_addon)
    with pytest.raises(InvalidInput) as err:
        _start(tw, target_kind="addon", target_key="sso")
    assert err.value.code == "trial_not_allowed" and "addon" in err.value.details


def test_unknown_targets_and_kinds_are_400_with_the_field(tw):
    with pytest.raises(InvalidInput) as err:
        _start(tw, target_key="platinum")
    assert "tier" in err.value.details
    with pytest.raises(InvalidInput) as err:
        _start(tw, target_kind="bundle")
    assert "target_kind" in err.value.details


def test_no_live_settings_no_trial(world_a):
    tw = make_trial_world(world_a)
    with tenant_context(tw.tenant):
        from upgrades.offers.models import OfferSettings

        OfferSettings.objects.for_tenant(tw.tenant).update(state="retired")
    with pytest.raises(Conflict) as err:
        _start(tw)
    assert err.value.code == "no_live_settings"


# --- one trial per account and target per window -----------------------------------------------------


def test_a_second_start_in_the_window_is_refused_even_after_the_first_ended(tw):
    first = _start(tw)
    with pytest.raises(Conflict) as err:
        _start(tw)
    assert err.value.code == "trial_already_used" and err.value.details["trial"] == first.pk
    with tenant_context(tw.tenant):
        end_due_trials(now=first.ends_at + DAY)
    with pytest.raises(Conflict):
        _start(tw, now=first.ends_at + 2 * DAY)
    # Another target is its own trial.
    assert _start(tw, target_kind="addon", target_key="sso").state == TrialState.ACTIVE
    with tenant_context(tw.tenant):
        assert Trial.objects.for_tenant(tw.tenant).filter(target_key="business").count() == 1


def test_after_the_window_a_new_trial_may_start(world_a):
    tw = make_trial_world(world_a, window_days=20)
    first = _start(tw)
    with tenant_context(tw.tenant):
        end_due_trials(now=first.ends_at)
    second = _start(tw, now=first.starts_at + 21 * DAY)
    assert second.pk != first.pk and second.state == TrialState.ACTIVE


def test_the_partial_unique_constraint_backs_the_window(tw):
    from django.db import IntegrityError, transaction

    first = _start(tw)
    with tenant_context(tw.tenant), pytest.raises(IntegrityError), transaction.atomic():
        Trial.objects.create(
            tenant=tw.tenant,
            account=tw.account,
            grant=LicenseGrant.objects.create(
                tenant=tw.tenant, account=tw.account, kind="trial", addon=tw.catalog.sso_addon, ends_at=first.ends_at
            ),
            target_kind="tier",
            target_key="business",
            started_by_label="x",
            ends_at=first.ends_at,
        )


# --- roles and tenants ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.ANALYST, Role.PRODUCT_MANAGER])
def test_staff_without_review_offers_or_manage_billing_cannot_start_a_trial(tw, role):
    with pytest.raises(PermissionDenied) as err:
        _start(tw, actor=tw.world.staff[role])
    assert err.value.code == "no_capability"
    with tenant_context(tw.tenant):
        assert not Trial.objects.for_tenant(tw.tenant).exists()
        assert not LicenseGrant.objects.for_tenant(tw.tenant).exists()


@pytest.mark.parametrize("role", [Role.CSM, Role.OWNER])
def test_csm_and_owner_may_start_a_trial(tw, role):
    assert _start(tw, actor=tw.world.staff[role]).started_by_label == tw.world.staff[role].email


def test_another_tenants_account_and_trial_are_not_found(tw, world_b):
    tb = make_trial_world(world_b)
    trial_b = _start(tb)
    with tenant_context(tw.tenant):
        with pytest.raises(NotFound):
            start_trial(tw.tenant, account=tb.account, target_kind="tier", target_key="business", actor="test")
        with pytest.raises(NotFound):
            get_trial_for_tenant(tw.tenant, trial_b.pk)
    # Sweeps run tenant by tenant: A's sweep leaves B's trial alone.
    with tenant_context(None):
        end_due_trials(now=trial_b.ends_at + DAY, tenant_id=tw.tenant.pk)
    with tenant_context(tb.tenant):
        assert Trial.objects.for_tenant(tb.tenant).get(pk=trial_b.pk).state == TrialState.ACTIVE


# --- early wins -------------------------------------------------------------------------------------------


def _ingest(tw: TrialWorld, events: list[dict]) -> None:
    with tenant_context(tw.tenant):
        result = ingest_events(tw.tenant, events=events, actor="test")
        assert not [r for r in result.results if r.get("status") == "rejected"], result.results


def test_early_wins_count_unlocked_features_used_during_the_trial_and_are_idempotent(tw):
    trial = _start(tw)
    now = timezone.now()
    _ingest(
        tw,
        [event(name="export_created", rows=120, at=now), event(name="export_created", rows=30, at=now)]
        + [event(name="sso_login", feature="sso", at=now) for _ in range(3)]
        + [event(name="api_call", at=now)],  # not unlocked (Team has API calls): not a win
    )
    with tenant_context(tw.tenant):
        wins = record_early_wins(tw.tenant, trial=trial, now=now + 3 * DAY)
        again = record_early_wins(tw.tenant, trial=trial, now=now + 3 * DAY)
        assert sorted((w.feature.key, w.uses, w.quantity) for w in wins) == [("exports", 2, 150), ("sso", 3, 0)]
        assert sorted((w.feature.key, w.uses, w.quantity) for w in again) == [("exports", 2, 150), ("sso", 3, 0)]
        assert TrialWin.objects.for_tenant(tw.tenant).filter(trial=trial).count() == 2
        progress = trial_progress(tw.tenant, trial, now=now + 3 * DAY)
    assert progress["days_left"] == 11 and progress["days_total"] == 14
    by_feature = {w["feature"]: w for w in progress["wins"]}
    assert by_feature["exports"]["sentence"] == "You used Exports 2 times during the trial: 150 rows."
    assert by_feature["sso"]["sentence"] == "You used Single sign-on 3 times during the trial."
    assert "billing date stay as they are" in progress["summary"]


def test_more_use_later_updates_the_same_win_rows(tw):
    trial = _start(tw)
    now = timezone.now()
    _ingest(tw, [event(name="export_created", rows=10, at=now)])
    with tenant_context(tw.tenant):
        record_early_wins(tw.tenant, trial=trial, now=now + DAY)
    _ingest(tw, [event(name="export_created", rows=5, at=now)])
    with tenant_context(None):
        assert record_wins_for_active_trials(now=now + 2 * DAY) == 1
    with tenant_context(tw.tenant):
        win = TrialWin.objects.for_tenant(tw.tenant).get(trial=trial)
        assert (win.uses, win.quantity) == (2, 15)


def test_gate_hits_for_an_unlocked_feature_count_as_uses(tw):
    trial = _start(tw)
    with tenant_context(tw.tenant):
        record_feature_gate_hit(tw.tenant, account_id=tw.account.pk, feature_key="exports", quantity=1, reason="x")
        wins = record_early_wins(tw.tenant, trial=trial, now=timezone.now() + DAY)
    assert [(w.feature.key, w.uses) for w in wins] == [("exports", 1)]


def test_use_before_the_trial_or_by_another_account_is_no_win(tw):
    from accounts.models import CustomerAccount

    with tenant_context(tw.tenant):
        CustomerAccount.objects.create(tenant=tw.tenant, external_id="acct-2", name="Other")
    before = timezone.now() - 2 * DAY
    _ingest(tw, [event(name="sso_login", feature="sso", at=before), event("acct-2", "sso_login", feature="sso")])
    trial = _start(tw)
    with tenant_context(tw.tenant):
        assert record_early_wins(tw.tenant, trial=trial, now=timezone.now() + DAY) == []
        progress = trial_progress(tw.tenant, trial)
    assert progress["wins"] == [] and "haven't used" in progress["wins_sentence"]


# --- the sunset -------------------------------------------------------------------------------------------


def test_at_its_end_the_trial_ends_the_grant_once_keeps_data_and_the_billing_date(tw):
    period = (tw.license.current_period_start, tw.license.current_period_end)
    trial = _start(tw)
    _ingest(tw, [event(name="export_created", rows=7)])
    with tenant_context(None):
        assert end_due_trials(now=trial.ends_at - datetime.timedelta(seconds=1)) == 0
        assert end_due_trials(now=trial.ends_at) == 1
        assert end_due_trials(now=trial.ends_at + DAY) == 0  # run twice: nothing more
    with tenant_context(tw.tenant):
        trial.refresh_from_db()
        grant = LicenseGrant.objects.for_tenant(tw.tenant).get(pk=trial.grant_id)
        assert trial.state == TrialState.ENDED and trial.ended_at == trial.ends_at
        assert grant.ended_at == trial.ends_at
        # The final tally is kept with the trial; the events and rollups made during it are kept.
        assert TrialWin.objects.for_tenant(tw.tenant).get(trial=trial).quantity == 7
        from usage.models import Event

        assert Event.objects.for_tenant(tw.tenant).filter(event="export_created").count() == 1
        lic = License.objects.for_tenant(tw.tenant).get(pk=tw.license.pk)
        assert (lic.current_period_start, lic.current_period_end, lic.tier_id) == (*period, tw.catalog.team.pk)
        steps = trial_next_steps(tw.tenant, trial)
    assert [o["key"] for o in steps["options"]] == ["upgrade", "stay", "talk_to_person"]
    assert not any(o["preselected"] for o in steps["options"])
    assert "same billing date" in steps["body"] and "kept" in steps["data_kept"]


def test_billing_expiring_the_grant_first_is_not_ended_twice(tw):
    trial = _start(tw)
    with tenant_context(None):
        assert expire_grants(now=trial.ends_at + DAY) == 1
    with tenant_context(tw.tenant):
        ended_at = LicenseGrant.objects.for_tenant(tw.tenant).get(pk=trial.grant_id).ended_at
    with tenant_context(None):
        assert end_due_trials(now=trial.ends_at + DAY) == 1
    with tenant_context(tw.tenant):
        trial.refresh_from_db()
        assert trial.state == TrialState.ENDED
        assert LicenseGrant.objects.for_tenant(tw.tenant).get(pk=trial.grant_id).ended_at == ended_at
        from accounts.models import AuditEntry

        actions = list(
            AuditEntry.objects.filter(tenant=tw.tenant, object_id=str(trial.grant_id)).values_list("action", flat=True)
        )
        assert actions.count("license_grant.ended") + actions.count("license_grant.expired") == 1


def test_a_grant_ended_early_from_the_licence_page_ends_the_trial_early(tw):
    trial = _start(tw)
    with tenant_context(tw.tenant):
        end_grant(tw.tenant, grant=trial.grant, actor=tw.world.staff[Role.CSM], reason="customer asked")
    with tenant_context(None):
        assert end_due_trials() == 1
    with tenant_context(tw.tenant):
        trial.refresh_from_db()
        assert trial.state == TrialState.CANCELLED and trial.ended_at < trial.ends_at


# --- paying mid-trial -------------------------------------------------------------------------------------


def _settle_upgrade(tw: TrialWorld) -> PlanChange:
    """What billing's settlement leaves behind: a settled plan change and the licence on Business."""
    with tenant_context(tw.tenant):
        price = Price.objects.create(
            tenant=tw.tenant,
            tier=tw.catalog.business,
            key="business-month",
            interval="month",
            amount=9900,
            state=GovernanceState.PUBLISHED,
            published_at=timezone.now(),
        )
        plan_change = PlanChange.objects.create(
            tenant=tw.tenant,
            license=tw.license,
            account=tw.account,
            kind="upgrade",
            state="settled",
            target_price=price,
            target_seats=5,
            quote_expires_at=timezone.now() + DAY,
        )
        License.objects.for_tenant(tw.tenant).filter(pk=tw.license.pk).update(tier=tw.catalog.business, price=price)
    return plan_change


def test_paying_mid_trial_converts_it_and_the_grant_keeps_its_promised_end(tw):
    trial = _start(tw)
    promised = trial.ends_at
    plan_change = _settle_upgrade(tw)
    with tenant_context(tw.tenant):
        converted = convert_trial_on_settle(tw.tenant, account=tw.account, plan_change=plan_change)
        assert [t.pk for t in converted] == [trial.pk]
        assert convert_trial_on_settle(tw.tenant, account=tw.account, plan_change=plan_change) == []
        trial.refresh_from_db()
        grant = LicenseGrant.objects.for_tenant(tw.tenant).get(pk=trial.grant_id)
        assert trial.state == TrialState.CONVERTED and trial.converted_at is not None
        assert grant.ended_at is None and grant.ends_at == promised
        assert trial_progress(tw.tenant, trial)["days_left"] == 14
    with tenant_context(None):
        assert end_due_trials(now=promised - DAY) == 0  # no silent end
        assert end_due_trials(now=promised) == 1
    with tenant_context(tw.tenant):
        trial.refresh_from_db()
        assert trial.state == TrialState.CONVERTED and trial.ended_at == promised
        assert trial_next_steps(tw.tenant, trial)["options"] == []


def test_a_plan_change_to_something_else_leaves_the_trial_alone(tw):
    trial = _start(tw, target_kind="addon", target_key="sso")
    plan_change = _settle_upgrade(tw)  # Business, without the SSO add-on
    with tenant_context(tw.tenant):
        assert convert_trial_on_settle(tw.tenant, account=tw.account, plan_change=plan_change) == []
        trial.refresh_from_db()
        assert trial.state == TrialState.ACTIVE


def test_an_upgrade_the_receiver_missed_still_counts_at_the_sunset(tw):
    trial = _start(tw)
    _settle_upgrade(tw)
    with tenant_context(None):
        end_due_trials(now=trial.ends_at)
    with tenant_context(tw.tenant):
        trial.refresh_from_db()
        assert trial.state == TrialState.CONVERTED


def test_a_trial_from_an_offer_remembers_it_and_an_offer_of_another_account_is_refused(tw):
    from accounts.models import CustomerAccount
    from upgrades.offers.models import Offer, OfferSettings

    with tenant_context(tw.tenant):
        other = CustomerAccount.objects.create(tenant=tw.tenant, external_id="acct-2", name="Other")
        settings = OfferSettings.objects.for_tenant(tw.tenant).get(state="live")
        offers = [
            Offer.objects.create(
                tenant=tw.tenant,
                account=account,
                settings_version=settings,
                state="sent",
                target_kind="tier",
                target_key="business",
                expires_at=timezone.now() + 21 * DAY,
            )
            for account in (tw.account, other)
        ]
    with pytest.raises(InvalidInput) as err:
        _start(tw, offer=offers[1], source="offer")
    assert "offer" in err.value.details
    trial = _start(tw, offer=offers[0], source="offer")
    assert trial.offer_id == offers[0].pk and trial.source == "offer"
    with tenant_context(tw.tenant):
        assert (
            LicenseGrant.objects.for_tenant(tw.tenant)
            .get(pk=trial.grant_id)
            .reference.endswith(f":offer:{offers[0].pk}")
        )
        assert trial_next_steps(tw.tenant, trial)["options"][0]["offer"] == offers[0].pk


def test_an_account_without_a_licence_may_try_a_paid_tier_over_the_free_one(tw):
    with tenant_context(tw.tenant):
        License.objects.for_tenant(tw.tenant).filter(pk=tw.license.pk).delete()
    trial = _start(tw, target_key="team")
    assert trial.state == TrialState.ACTIVE
    with pytest.raises(InvalidInput):
        _start(tw, target_key="free")
