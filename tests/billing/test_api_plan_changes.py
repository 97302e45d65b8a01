"""POST /api/v1/plan-changes (quote), POST .../{id}/confirm, GET .../{id}: Stripe stand-in, real worker."""

from __future__ import annotations

import pytest

from billing.models import PlanChange, PlanChangeState
from catalog.models import Entitlement, Feature, FeatureKind
from tests.billing.helpers import billed_license
from tests.conftest import wait_for

URL = "/api/v1/plan-changes"


def body(**overrides):
    return {"account": "acct-1", "tier": "business", "interval": "month", "seats": 3, "addons": [], **overrides}


def error_fields(response) -> dict:
    return response.json()["error"]["details"]


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_quote_confirmed_over_the_api_settles_and_charges_exactly_the_quoted_lines(
    world_a, standin, live_server, celery_worker_process
):
    billed = billed_license(
        world_a.tenant,
        world_a.account,
        standin,
        webhook_url=f"{live_server.url}/billing/stripe/webhook/{world_a.tenant.slug}/",
    )
    api = world_a.api("read", "write")

    quoted = api.post(URL, body(addons=["sso"]), format="json")

    assert quoted.status_code == 201, quoted.content
    answer = quoted.json()
    assert answer["state"] == "quoted"
    quote = answer["quote"]
    assert quote["currency"] == "USD"
    assert len(quote["lines"]) >= 2 and any(line["amount"] < 0 for line in quote["lines"])  # credit + charge
    assert quote["amount_due_now"] == sum(line["amount"] for line in quote["lines"]) > 0
    assert quote["next_renewal_amount"] == 3 * billed.catalog.prices["business-month"].amount + 3 * (
        billed.catalog.prices["sso-month"].amount
    )
    assert quote["next_renewal_at"] is not None

    confirmed = api.post(f"{URL}/{answer['id']}/confirm", HTTP_IDEMPOTENCY_KEY="confirm-1")
    assert confirmed.status_code == 202, confirmed.content
    assert confirmed.json()["state"] in ("pending", "submitted", "settled")

    def settled():
        followed = api.get(f"{URL}/{answer['id']}").json()
        return followed if followed["state"] in ("settled", "failed") else None

    followed = wait_for(settled, timeout=30)
    assert followed["state"] == "settled", followed
    assert followed["amount_charged"] == quote["amount_due_now"]
    assert [line["amount"] for line in followed["quote"]["lines"]] == [line["amount"] for line in quote["lines"]]
    license = billed.refresh()
    assert (license.tier.key, license.seats) == ("business", 3)
    assert sorted(a.key for a in license.addons.all()) == ["sso"]

    # A replayed confirm answers the first answer byte for byte and starts nothing new.
    replay = api.post(f"{URL}/{answer['id']}/confirm", HTTP_IDEMPOTENCY_KEY="confirm-1")
    assert replay.status_code == 202
    assert replay.content == confirmed.content
    assert replay["Idempotent-Replayed"] == "true"
    assert PlanChange.objects.filter(tenant=world_a.tenant, state=PlanChangeState.SETTLED).count() == 1
    paid = [c for c in standin.charges(billed.api_key, license.stripe_customer_id) if c["status"] == "succeeded"]
    assert [c["amount"] for c in paid].count(quote["amount_due_now"]) == 1


@pytest.fixture
def billed(world_a, standin):
    return billed_license(world_a.tenant, world_a.account, standin)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [
        ({"tier": "platinum"}, "tier", "No published tier"),
        ({"tier": "Not A Key"}, "tier", "valid tier key"),
        ({"interval": "week"}, "interval", "not a valid choice"),
        ({"seats": 0}, "seats", "greater than or equal to 1"),
        ({"seats": "many"}, "seats", "valid integer"),
        ({"addons": ["warp-drive"]}, "addons", "No published add-on"),
        ({"addons": ["sso", "sso"]}, "addons", "at most once"),
        ({"account": "nobody"}, "account", "No such account"),
        ({"account": "bad\x00id"}, "account", ""),
    ],
)
def test_every_invalid_field_is_a_400_naming_the_field_and_nothing_is_quoted(world_a, billed, overrides, field, reason):
    response = world_a.api("write").post(URL, body(**overrides), format="json")

    assert response.status_code == 400, response.content
    details = error_fields(response)
    assert field in details
    assert reason.lower() in " ".join(map(str, details[field])).lower()
    assert not PlanChange.objects.filter(tenant=world_a.tenant).exists()


@pytest.mark.integration
def test_missing_fields_are_each_named(world_a, billed):
    response = world_a.api("write").post(URL, {}, format="json")

    assert response.status_code == 400
    assert set(error_fields(response)) >= {"account", "tier", "interval", "seats"}


@pytest.mark.integration
def test_more_seats_than_the_tier_allows_is_refused(world_a, billed):
    tier = billed.catalog.tiers["business"]
    feature = Feature.objects.create(
        tenant=world_a.tenant, product=tier.product, key="seats", name="Users", kind=FeatureKind.SEATS
    )
    Entitlement.objects.create(tenant=world_a.tenant, tier=tier, feature=feature, limit=10)

    response = world_a.api("write").post(URL, body(seats=11), format="json")

    assert response.status_code == 400
    assert "at most 10" in error_fields(response)["seats"][0]
    assert world_a.api("write").post(URL, body(seats=10), format="json").status_code == 201


@pytest.mark.integration
def test_an_account_without_a_licence_is_refused(world_a, standin):
    response = world_a.api("write").post(URL, body(), format="json")

    assert response.status_code == 400
    assert error_fields(response)["account"] == ["The account holds no licence."]


@pytest.mark.integration
def test_quoting_what_the_licence_already_holds_is_a_400_nothing_to_change(world_a, billed):
    response = world_a.api("write").post(URL, body(tier="team"), format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "nothing_to_change"


@pytest.mark.integration
def test_a_quote_made_stale_by_a_licence_change_is_a_409_on_confirm(world_a, billed):
    api = world_a.api("read", "write")
    quoted = api.post(URL, body(), format="json").json()
    billed.license.seats = 5
    billed.license.save(update_fields=["seats"])

    response = api.post(f"{URL}/{quoted['id']}/confirm")

    assert response.status_code == 409
    assert response.json()["error"]["code"] in ("quote_stale", "license_not_active")
    assert PlanChange.objects.get(pk=quoted["id"]).state == PlanChangeState.QUOTED


@pytest.mark.integration
def test_a_read_only_key_can_follow_but_not_quote_or_confirm(world_a, billed):
    quoted = world_a.api("write").post(URL, body(), format="json").json()
    read_only = world_a.api("read")

    assert read_only.post(URL, body(), format="json").status_code == 403
    assert read_only.post(f"{URL}/{quoted['id']}/confirm").status_code == 403
    assert read_only.get(f"{URL}/{quoted['id']}").status_code == 200
    assert PlanChange.objects.get(pk=quoted["id"]).state == PlanChangeState.QUOTED


@pytest.mark.integration
def test_another_tenants_plan_change_is_404_for_reading_and_confirming(two_tenants, standin):
    a, b = two_tenants
    billed_license(b.tenant, b.account, standin)
    theirs = b.api("write").post(URL, body(), format="json").json()

    assert a.api("read").get(f"{URL}/{theirs['id']}").status_code == 404
    response = a.api("write").post(f"{URL}/{theirs['id']}/confirm")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert PlanChange.objects.get(pk=theirs["id"]).state == PlanChangeState.QUOTED
    # A's own account id is the look-alike "acct-1", but it holds no licence in A: B's is never used.
    assert a.api("write").post(URL, body(), format="json").status_code == 400


@pytest.mark.integration
def test_an_addon_naming_no_tiers_is_sold_with_any_tier_and_one_naming_tiers_only_with_those(world_a, billed):
    from tests.billing.factories import add_addon

    add_addon(billed.catalog, "team-only", tiers=("team",))
    add_addon(billed.catalog, "anywhere")
    api = world_a.api("write")

    refused = api.post(URL, body(addons=["team-only"]), format="json")
    assert refused.status_code == 400
    assert error_fields(refused)["addons"] == ["'team-only' is not offered with 'business'."]
    quoted = api.post(URL, body(addons=["anywhere"]), format="json")
    assert quoted.status_code == 201, quoted.content
    assert any("Anywhere" in line["description"] for line in quoted.json()["quote"]["lines"])
