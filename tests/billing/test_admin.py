"""Billing admin pages: each tenant sees only its own rows; keys are write-only; actions go through services."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import License, LicenseGrant, LicenseStatus, PlanChange, StripeAccount, StripeWebhookEvent
from tests.billing.factories import configure_stripe, make_catalog, make_license
from tests.isolation import admin_url, assert_change_page_refuses, assert_changelist_hides


def billing_rows(world):
    catalog = make_catalog(world.tenant)
    license = make_license(world.account, catalog.prices["team-month"])
    grant = LicenseGrant.objects.create(
        tenant=world.tenant,
        account=world.account,
        kind="trial",
        tier=catalog.tiers["business"],
        ends_at=timezone.now() + timedelta(days=3),
    )
    change = PlanChange.objects.create(
        tenant=world.tenant,
        license=license,
        account=world.account,
        kind="upgrade",
        target_price=catalog.prices["business-month"],
        target_seats=3,
        quote_expires_at=timezone.now(),
        quote_lines=[
            {"description": "Unused time on 3 × Team", "amount": -1965, "proration": True},
            {"description": "Remaining time on 3 × Business", "amount": 6706, "proration": True},
        ],
        quote_total=4741,
        quote_amount_due=4741,
    )
    configure_stripe(world.tenant)
    event = StripeWebhookEvent.objects.create(
        tenant=world.tenant,
        event_id=f"evt_{world.tenant.slug}",
        event_type="invoice.paid",
        stripe_created=timezone.now(),
        payload={},
    )
    return {
        "license": license,
        "grant": grant,
        "change": change,
        "stripe": StripeAccount.objects.get(tenant=world.tenant),
        "event": event,
    }


@pytest.fixture
def rows(two_tenants):
    a, b = two_tenants
    return a, billing_rows(a), billing_rows(b)


@pytest.mark.parametrize("name", ["license", "grant", "change", "stripe", "event"])
def test_every_billing_admin_page_lists_and_opens_only_the_tenants_own_rows(rows, name):
    a, own, foreign = rows
    client = a.staff_client("owner")
    assert_changelist_hides(client, own=own[name], foreign=foreign[name])
    assert_change_page_refuses(client, foreign[name])
    assert client.get(admin_url(own[name])).status_code == 200


def test_a_plan_change_page_shows_every_quote_line(rows):
    a, own, _ = rows
    html = a.staff_client("owner").get(admin_url(own["change"])).content.decode()
    assert "Unused time on 3 × Team" in html and "-$19.65" in html and "$47.41" in html


def test_stripe_keys_are_write_only_in_the_admin(rows):
    a, own, _ = rows
    client = a.staff_client("owner")
    html = client.get(admin_url(own["stripe"])).content.decode()
    assert "sk_test_tenanta" not in html and "whsec_tenantasecret" not in html
    assert "…" in html  # only the hints
    response = client.post(
        admin_url(own["stripe"]),
        {"secret_key": "", "webhook_secret": "whsec_rotated_secret_abcd", "downgrade_prorated_credit": "on"},
    )
    assert response.status_code == 302
    from billing.services.stripe_accounts import webhook_secret_for

    assert webhook_secret_for(a.tenant) == "whsec_rotated_secret_abcd"
    own["stripe"].refresh_from_db()
    assert own["stripe"].downgrade_prorated_credit is True
    assert a.staff_client("csm").get(admin_url(own["stripe"])).status_code in (302, 403)  # owners only


def test_the_publishable_key_is_checked_and_shown_back_since_it_is_not_a_secret(rows):
    a, own, _ = rows
    client = a.staff_client("owner")
    wrong = client.post(admin_url(own["stripe"]), {"publishable_key": "sk_live_oops"})
    assert wrong.status_code == 200 and "A Stripe publishable key starts with pk_" in wrong.content.decode()
    own["stripe"].refresh_from_db()
    assert own["stripe"].publishable_key == ""
    saved = client.post(admin_url(own["stripe"]), {"publishable_key": "pk_test_tenanta123"})
    assert saved.status_code == 302
    own["stripe"].refresh_from_db()
    assert own["stripe"].publishable_key == "pk_test_tenanta123"
    assert "pk_test_tenanta123" in client.get(admin_url(own["stripe"])).content.decode()


def test_revoke_and_restore_actions_need_a_reason_and_the_billing_capability(rows):
    a, own, foreign = rows
    changelist = admin_url(License, "changelist")
    analyst = a.staff_client("analyst")
    analyst.post(changelist, {"action": "revoke", "_selected_action": [own["license"].pk], "reason": "x"})
    own["license"].refresh_from_db()
    assert own["license"].status == LicenseStatus.ACTIVE

    csm = a.staff_client("csm")
    csm.post(changelist, {"action": "revoke", "_selected_action": [own["license"].pk], "reason": ""})
    own["license"].refresh_from_db()
    assert own["license"].status == LicenseStatus.ACTIVE
    csm.post(
        changelist,
        {"action": "revoke", "_selected_action": [own["license"].pk, foreign["license"].pk], "reason": "Abuse report"},
    )
    own["license"].refresh_from_db()
    foreign["license"].refresh_from_db()
    assert own["license"].status == LicenseStatus.CANCELED
    assert foreign["license"].status == LicenseStatus.ACTIVE  # another tenant's id is silently out of scope
    csm.post(changelist, {"action": "restore", "_selected_action": [own["license"].pk], "reason": "Resolved"})
    own["license"].refresh_from_db()
    assert own["license"].status == LicenseStatus.ACTIVE
