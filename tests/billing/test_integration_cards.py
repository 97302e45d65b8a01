"""Cards entered with Stripe.js (billing.services.cards) against the stand-in: the server trusts only what it
reads back from Stripe. A SetupIntent of another account (of this tenant or another), one the bank has not
confirmed, or a made-up id never changes anyone's card; a publishable key reaches only its own account."""

from __future__ import annotations

import pytest
import requests

from accounts.models import AuditEntry, CustomerAccount
from billing.errors import Conflict, InvalidInput
from billing.models import PlanChange
from billing.services.cards import card_entry, finish_card_setup, payment_authentication, start_card_setup
from billing.services.stripe_accounts import save_stripe_keys
from billing.stripe_cards import stripe_js_url
from tests.billing.factories import make_license
from tests.billing.helpers import billed_license

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
VISA, DECLINED, THREE_DS = "4242424242424242", "4000000000000002", "4000002760003184"


def publishable(world) -> str:
    key = "pk_test_" + world.tenant.slug.replace("-", "")
    save_stripe_keys(world.tenant, actor="t", publishable_key=key)
    return key


def confirm_in_browser(standin, key: str, client_secret: str, number: str | None = None) -> requests.Response:
    """What Stripe.js posts (JSON, the publishable key in the body, no Authorization header)."""
    body: dict = {"key": key, "use_stripe_sdk": True, "client_secret": client_secret}
    if number:
        body["payment_method_data"] = {"type": "card", "card": {"number": number, "exp_month": "12",
                                                                "exp_year": "2034", "cvc": "123"}}  # fmt: skip
    seti = client_secret.split("_secret_")[0]
    return requests.post(f"{standin.url}/v1/setup_intents/{seti}/confirm", json=body,
                         headers={"Origin": "http://portal.test"}, timeout=10)  # fmt: skip


def default_card(standin, billed) -> str | None:
    customer = standin.get(f"/v1/customers/{billed.license.stripe_customer_id}", billed.api_key)
    return customer["invoice_settings"]["default_payment_method"]


def test_a_confirmed_card_becomes_the_default_and_is_audited(world_a, standin):
    billed = billed_license(world_a.tenant, world_a.account, standin)
    assert card_entry(world_a.tenant) is None  # no publishable key yet: the portal offers no card form
    key = publishable(world_a)
    entry = card_entry(world_a.tenant)
    assert entry is not None and entry.publishable_key == key and entry.js_url == stripe_js_url()
    assert stripe_js_url() == f"{standin.url}/js.stripe.com/v3/"
    before = default_card(standin, billed)
    setup = start_card_setup(world_a.tenant, account=world_a.account, attempt="1")
    answer = confirm_in_browser(standin, key, setup.client_secret, VISA)
    assert answer.status_code == 200 and answer.json()["status"] == "succeeded"
    assert answer.headers["Access-Control-Allow-Origin"] == "http://portal.test"
    card = finish_card_setup(world_a.tenant, account=world_a.account, setup_intent_id=answer.json()["id"], actor="t")
    assert card == answer.json()["payment_method"] != before
    assert default_card(standin, billed) == card
    assert AuditEntry.objects.filter(tenant=world_a.tenant, action="billing.card_updated").count() == 1


def test_a_card_needing_3d_secure_is_saved_only_once_the_bank_confirms(world_a, standin):
    billed = billed_license(world_a.tenant, world_a.account, standin)
    key = publishable(world_a)
    before = default_card(standin, billed)
    setup = start_card_setup(world_a.tenant, account=world_a.account, attempt="1")
    held = confirm_in_browser(standin, key, setup.client_secret, THREE_DS).json()
    assert held["status"] == "requires_action"
    with pytest.raises(Conflict, match="did not confirm"):
        finish_card_setup(world_a.tenant, account=world_a.account, setup_intent_id=held["id"], actor="t")
    assert default_card(standin, billed) == before
    assert confirm_in_browser(standin, key, setup.client_secret).json()["status"] == "succeeded"  # the bank's step
    finish_card_setup(world_a.tenant, account=world_a.account, setup_intent_id=held["id"], actor="t")
    assert default_card(standin, billed) != before


def test_a_declined_card_is_refused_by_stripe_and_changes_nothing(world_a, standin):
    billed = billed_license(world_a.tenant, world_a.account, standin)
    key = publishable(world_a)
    before = default_card(standin, billed)
    setup = start_card_setup(world_a.tenant, account=world_a.account, attempt="1")
    refused = confirm_in_browser(standin, key, setup.client_secret, DECLINED)
    assert refused.status_code == 402 and refused.json()["error"]["code"] == "card_declined"
    seti = setup.client_secret.split("_secret_")[0]
    with pytest.raises(Conflict, match="did not confirm"):
        finish_card_setup(world_a.tenant, account=world_a.account, setup_intent_id=seti, actor="t")
    assert default_card(standin, billed) == before


def test_another_accounts_setup_intent_or_a_made_up_id_changes_no_card(world_a, world_b, standin):
    a = billed_license(world_a.tenant, world_a.account, standin)
    key = publishable(world_a)
    other = CustomerAccount.objects.create(tenant=world_a.tenant, external_id="acct-2", name="Other")
    make_license(other, a.catalog.prices["team-month"], stripe_customer_id="")
    theirs = start_card_setup(world_a.tenant, account=other, attempt="1")  # creates their Stripe customer
    confirmed = confirm_in_browser(standin, key, theirs.client_secret, VISA).json()
    before = default_card(standin, a)
    with pytest.raises(InvalidInput):  # same tenant, another account's SetupIntent
        finish_card_setup(world_a.tenant, account=world_a.account, setup_intent_id=confirmed["id"], actor="t")
    for made_up in ("seti_doesnotexist", "pm_123", "seti_../../x", ""):
        with pytest.raises(InvalidInput):  # Stripe's 404, or not a SetupIntent id at all
            finish_card_setup(world_a.tenant, account=world_a.account, setup_intent_id=made_up, actor="t")
    assert default_card(standin, a) == before

    b = billed_license(world_b.tenant, world_b.account, standin)
    b_key = publishable(world_b)
    with pytest.raises(InvalidInput):  # tenant B's Stripe account does not know A's SetupIntent
        finish_card_setup(world_b.tenant, account=world_b.account, setup_intent_id=confirmed["id"], actor="t")
    mine = start_card_setup(world_a.tenant, account=world_a.account, attempt="2")
    assert confirm_in_browser(standin, b_key, mine.client_secret, VISA).status_code == 404  # B's key, A's intent
    assert default_card(standin, b) is not None and not AuditEntry.objects.filter(action="billing.card_updated")


def test_no_authentication_is_asked_for_a_payment_that_did_not_fail_for_it(world_a, standin):
    billed = billed_license(world_a.tenant, world_a.account, standin)
    publishable(world_a)
    change = PlanChange(tenant=world_a.tenant, license=billed.license, account=world_a.account, state="failed",
                        failure_code="card_declined", stripe_invoice_id="in_x")  # fmt: skip
    assert payment_authentication(world_a.tenant, plan_change=change) is None
