"""Paying for the upgrade mid-trial, end to end: the Stripe stand-in, a real Celery worker, signed webhooks,
billing's plan_change_settled -> the offers receiver -> the trial converts and keeps its promised end."""

from __future__ import annotations

import pytest

from accounts.tenancy import tenant_context
from billing.models import License, LicenseGrant, PlanChange, PlanChangeState
from billing.services import plan_changes
from tests.billing import conftest as billing_fixtures
from tests.billing.helpers import billed_license
from tests.conftest import wait_for
from tests.upgrades.offers.conftest import make_live_settings
from upgrades.offers.models import Trial, TrialState
from upgrades.offers.services.trials import end_due_trials, start_trial

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

stripe_standin = billing_fixtures.stripe_standin
standin = billing_fixtures.standin


def test_paying_mid_trial_converts_it_the_grant_runs_to_its_end_and_nothing_extra_is_charged(
    world_a, standin, live_server, celery_worker_process
):
    tenant = world_a.tenant
    billed = billed_license(
        tenant, world_a.account, standin, webhook_url=f"{live_server.url}/billing/stripe/webhook/{tenant.slug}/"
    )
    with tenant_context(tenant):
        make_live_settings(tenant, trial_days=14)
        trial = start_trial(
            tenant, account=world_a.account, target_kind="tier", target_key="business", actor="api-test"
        )
        promised = trial.ends_at
        quote = plan_changes.quote_plan_change(
            tenant, license=billed.license, target_price=billed.catalog.prices["business-month"], requested_by="test"
        )
        plan_changes.confirm_plan_change(tenant, plan_change=quote, actor="test")

    def settled():
        with tenant_context(tenant):
            pc = PlanChange.objects.for_tenant(tenant).get(pk=quote.pk)
        return pc if pc.state in (PlanChangeState.SETTLED, PlanChangeState.FAILED) else None

    pc = wait_for(settled, timeout=40)
    assert pc.state == PlanChangeState.SETTLED, (pc.failure_code, pc.failure_message)

    def converted():
        with tenant_context(tenant):
            current = Trial.objects.for_tenant(tenant).get(pk=trial.pk)
        return current if current.state == TrialState.CONVERTED else None

    current = wait_for(converted, timeout=20)
    with tenant_context(tenant):
        grant = LicenseGrant.objects.for_tenant(tenant).get(pk=trial.grant_id)
        assert grant.ended_at is None and grant.ends_at == promised == current.ends_at  # no silent end
        license = License.objects.for_tenant(tenant).get(pk=billed.license.pk)
        assert license.tier.key == "business"
        # The upgrade charged what its quote said; the trial added no charge of its own.
        assert pc.charged_amount == pc.quote_amount_due
        charges = standin.charges(billed.api_key, license.stripe_customer_id)
        assert [c["amount"] for c in charges if c["status"] == "succeeded"].count(pc.quote_amount_due) == 1
        period = (license.current_period_start, license.current_period_end)
    with tenant_context(None):
        assert end_due_trials(now=promised) == 1
    with tenant_context(tenant):
        final = Trial.objects.for_tenant(tenant).get(pk=trial.pk)
        assert final.state == TrialState.CONVERTED and final.ended_at == promised
        license = License.objects.for_tenant(tenant).get(pk=billed.license.pk)
        assert (license.current_period_start, license.current_period_end) == period  # the sunset left billing alone
