"""The product manager's admin: buttons, read-only published items, inline validation, the matrix."""

import pytest

from accounts.models import AuditEntry
from catalog.models import Entitlement, GovernanceState, Price, Tier
from catalog.money import to_major

pytestmark = pytest.mark.django_db


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_the_change_page_of_a_draft_shows_its_state_and_submit_button(world_a, full_a):
    client = world_a.staff_client("product_manager")
    response = client.get(f"/admin/catalog/tier/{full_a.extras['draft'].pk}/change/")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-testid="governance"' in body and 'data-transition="submit"' in body
    assert "Draft" in body


def test_submit_then_approve_by_a_second_person_then_publish_through_the_buttons(world_a, full_a):
    draft = full_a.extras["draft"]
    pm, owner = world_a.staff_client("product_manager"), world_a.staff_client("owner")
    url = f"/admin/catalog/tier/{draft.pk}/governance/"
    response = pm.post(url + "submit/", follow=True)
    assert "submitted for approval" in " ".join(messages_of(response))
    response = pm.post(url + "approve/", {"confirmed": "1"}, follow=True)
    assert any("someone else must approve" in m for m in messages_of(response))
    assert not Tier.objects.get(pk=draft.pk).is_approved
    page = pm.get(f"/admin/catalog/tier/{draft.pk}/change/").content.decode()
    assert 'data-testid="four-eyes"' in page
    owner.post(url + "approve/", {"confirmed": "1"})
    assert Tier.objects.get(pk=draft.pk).is_approved
    response = pm.post(url + "publish/", {"confirmed": "1"}, follow=True)
    assert Tier.objects.get(pk=draft.pk).state == GovernanceState.PUBLISHED
    assert any("published" in m for m in messages_of(response))


def test_a_published_tier_opens_read_only_and_refuses_a_posted_change(world_a, full_a):
    client = world_a.staff_client("product_manager")
    url = f"/admin/catalog/tier/{full_a.team.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    assert 'name="name"' not in page.content.decode()  # no editable inputs
    assert "cannot be edited in place" in page.content.decode()
    response = client.post(
        url, {"name": "Renamed", "key": "team", "rank": 20, "currency": "USD", "product": full_a.product.pk}
    )
    assert response.status_code == 403
    assert Tier.objects.get(pk=full_a.team.pk).name == "Team"


def test_revise_button_opens_the_new_draft_version(world_a, full_a):
    client = world_a.staff_client("product_manager")
    response = client.post(f"/admin/catalog/tier/{full_a.team.pk}/governance/revise/")
    v2 = Tier.objects.get(tenant=full_a.tenant, key="team", version=2)
    assert response.status_code == 302 and response["Location"].endswith(f"/tier/{v2.pk}/change/")


def test_retire_with_licences_shows_the_warning(world_a, full_a):
    from catalog import hooks

    def counter(tenant, ids):
        return 3

    hooks.register_holder_counter(counter)
    try:
        response = world_a.staff_client("product_manager").post(
            f"/admin/catalog/tier/{full_a.business.pk}/governance/retire/", {"reason": "Replaced"}, follow=True
        )
    finally:
        hooks.unregister_holder_counter(counter)
    assert any("3 active licence(s) still hold Business v1" in m for m in messages_of(response))


def test_list_action_reports_each_refusal(world_a, full_a):
    client = world_a.staff_client("product_manager")
    response = client.post(
        "/admin/catalog/tier/",
        {"action": "publish_selected", "_selected_action": [full_a.extras["draft"].pk], "confirmed": "1"},
        follow=True,
    )
    assert any("Cannot publish" in m for m in messages_of(response))


def tier_form(product, **overrides):
    data = {
        "product": product.pk,
        "key": "growth",
        "name": "Growth",
        "rank": 25,
        "currency": "USD",
        "tagline": "",
        "outcomes": "Ship weekly\nFewer incidents",
        "who_for": "",
        "default_trial_days": 14,
        "is_public": "on",
        "prices-TOTAL_FORMS": 2,
        "prices-INITIAL_FORMS": 0,
        "prices-MIN_NUM_FORMS": 0,
        "prices-MAX_NUM_FORMS": 2,
        "prices-0-interval": "month",
        "prices-0-amount": "10.00",  # typed in dollars, stored in cents
        "prices-0-per_seat": "on",
        "prices-1-interval": "year",
        "prices-1-amount": "100",
        "prices-1-per_seat": "on",
        "entitlements-TOTAL_FORMS": 0,
        "entitlements-INITIAL_FORMS": 0,
        "entitlements-MIN_NUM_FORMS": 0,
        "entitlements-MAX_NUM_FORMS": 1000,
    }
    data.update(overrides)
    return data


def test_adding_a_tier_with_inline_prices_goes_through_services_and_is_audited(world_a, full_a):
    client = world_a.staff_client("product_manager")
    response = client.post("/admin/catalog/tier/add/", tier_form(full_a.product))
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    tier = Tier.objects.get(tenant=full_a.tenant, key="growth")
    assert tier.outcomes == ["Ship weekly", "Fewer incidents"]
    assert tier.created_by == world_a.staff["product_manager"]
    assert sorted(tier.prices.values_list("interval", "amount", "currency")) == [
        ("month", 1_000, "USD"),
        ("year", 10_000, "USD"),
    ]
    actions = set(
        AuditEntry.objects.for_tenant(full_a.tenant)
        .filter(actor=world_a.staff["product_manager"])
        .values_list("action", flat=True)
    )
    assert {"tier.created", "price.created"} <= actions


@pytest.mark.parametrize(
    ("typed", "currency", "stored"),
    [("29.00", "USD", 2_900), ("29", "USD", 2_900), ("1,250.50", "USD", 125_050), ("1500", "JPY", 1_500)],
)
def test_a_price_typed_in_the_currencys_units_is_stored_in_minor_units(world_a, full_a, typed, currency, stored):
    client = world_a.staff_client("product_manager")
    data = tier_form(full_a.product, currency=currency, **{"prices-0-amount": typed, "prices-TOTAL_FORMS": 1})
    response = client.post("/admin/catalog/tier/add/", data)
    assert response.status_code == 302, response.context and [
        fs.formset.errors for fs in response.context["inline_admin_formsets"]
    ]
    tier = Tier.objects.get(tenant=full_a.tenant, key="growth")
    assert list(tier.prices.values_list("amount", "currency")) == [(stored, currency)]


@pytest.mark.parametrize(
    ("typed", "currency", "message"),
    [
        ("29.001", "USD", "at most 2 decimals"),
        ("12.5", "JPY", "no minor units"),
        ("twenty", "USD", "not an amount"),
        ("-5", "USD", "cannot be negative"),
    ],
)
def test_a_price_that_is_not_an_amount_in_the_currency_is_a_field_error(world_a, full_a, typed, currency, message):
    client = world_a.staff_client("product_manager")
    data = tier_form(full_a.product, currency=currency, **{"prices-0-amount": typed, "prices-TOTAL_FORMS": 1})
    response = client.post("/admin/catalog/tier/add/", data)
    assert response.status_code == 200
    errors = " ".join(str(e) for fs in response.context["inline_admin_formsets"] for e in fs.formset.errors)
    assert message in errors
    assert not Tier.objects.filter(tenant=full_a.tenant, key="growth").exists()


def test_a_draft_price_is_shown_back_in_units_not_cents(world_a, full_a):
    page = world_a.staff_client("product_manager").get(f"/admin/catalog/tier/{full_a.extras['draft'].pk}/change/")
    body = page.content.decode()
    assert 'value="159.00"' in body and 'value="15900"' not in body
    assert "Amount (USD)" in body


def test_an_annual_price_above_twelve_monthly_is_shown_as_a_form_error(world_a, full_a):
    client = world_a.staff_client("product_manager")
    response = client.post("/admin/catalog/tier/add/", tier_form(full_a.product, **{"prices-1-amount": "125.00"}))
    assert response.status_code == 200
    errors = " ".join(str(e) for fs in response.context["inline_admin_formsets"] for e in fs.formset.non_form_errors())
    assert "above 12 x the monthly price" in errors
    assert not Tier.objects.filter(tenant=full_a.tenant, key="growth").exists()


def test_changing_the_currency_of_a_draft_with_prices_is_a_form_error(world_a, full_a):
    draft = full_a.extras["draft"]
    client = world_a.staff_client("product_manager")
    prices = list(draft.prices.order_by("interval"))
    data = tier_form(
        full_a.product,
        key="scale",
        name="Scale",
        rank=40,
        currency="EUR",
        **{
            "prices-INITIAL_FORMS": 2,
            "prices-0-id": prices[0].pk,
            "prices-0-interval": prices[0].interval,
            "prices-0-amount": str(to_major(prices[0].amount, "USD")),
            "prices-0-tier": draft.pk,
            "prices-1-id": prices[1].pk,
            "prices-1-interval": prices[1].interval,
            "prices-1-amount": str(to_major(prices[1].amount, "USD")),
            "prices-1-tier": draft.pk,
        },
    )
    response = client.post(f"/admin/catalog/tier/{draft.pk}/change/", data)
    assert response.status_code == 200
    assert "currency" in response.context["adminform"].form.errors
    assert Tier.objects.get(pk=draft.pk).currency == "USD"


def test_analysts_see_the_catalog_but_cannot_edit_or_move_it(world_a, full_a):
    client = world_a.staff_client("analyst")
    assert client.get("/admin/catalog/tier/").status_code == 200
    assert client.get("/admin/catalog/tier/add/").status_code == 403
    draft = full_a.extras["draft"]
    page = client.get(f"/admin/catalog/tier/{draft.pk}/change/").content.decode()
    assert 'data-transition="submit"' not in page
    response = client.post(f"/admin/catalog/tier/{draft.pk}/governance/submit/", follow=True)
    assert any("may not submit" in m for m in messages_of(response))
    assert Tier.objects.get(pk=draft.pk).state == GovernanceState.DRAFT
    assert client.post("/admin/catalog/tier/matrix/", {"product": full_a.product.pk}).status_code == 403


def test_matrix_edits_draft_cells_and_leaves_published_ones_alone(world_a, full_a):
    client = world_a.staff_client("product_manager")
    draft = full_a.extras["draft"]
    page = client.get("/admin/catalog/tier/matrix/")
    assert page.status_code == 200
    body = page.content.decode()
    assert f'name="c-{draft.pk}-{full_a.api_calls.pk}-limit"' in body
    assert f'name="c-{full_a.team.pk}-{full_a.api_calls.pk}-limit"' not in body  # published: read-only
    data = {"product": full_a.product.pk}
    for feature in (full_a.api_calls, full_a.seats, full_a.sso):
        data[f"c-{draft.pk}-{feature.pk}-on"] = "on"
        data[f"c-{draft.pk}-{feature.pk}-enf"] = "hard"
    data[f"c-{draft.pk}-{full_a.api_calls.pk}-limit"] = "2,000,000"
    data[f"c-{full_a.team.pk}-{full_a.api_calls.pk}-limit"] = "1"  # ignored: not a draft
    response = client.post("/admin/catalog/tier/matrix/", data, follow=True)
    assert any("Saved 1 changed cell(s)." in m for m in messages_of(response))
    assert Entitlement.objects.get(tier=draft, feature=full_a.api_calls).limit == 2_000_000
    assert Entitlement.objects.get(tier=full_a.team, feature=full_a.api_calls).limit == 50_000


def test_matrix_refuses_a_bad_limit_and_saves_nothing(world_a, full_a):
    client = world_a.staff_client("product_manager")
    draft = full_a.extras["draft"]
    data = {
        "product": full_a.product.pk,
        f"c-{draft.pk}-{full_a.api_calls.pk}-on": "on",
        f"c-{draft.pk}-{full_a.api_calls.pk}-limit": "lots",
        f"c-{draft.pk}-{full_a.seats.pk}-on": "on",
        f"c-{draft.pk}-{full_a.seats.pk}-limit": "5",
    }
    response = client.post("/admin/catalog/tier/matrix/", data)
    assert response.status_code == 200
    assert "A whole number, or empty for unlimited." in response.content.decode()
    assert Entitlement.objects.get(tier=draft, feature=full_a.seats).limit is None


def test_matrix_flags_a_draft_that_grants_less_than_a_lower_tier(world_a, full_a):
    client = world_a.staff_client("product_manager")
    draft = full_a.extras["draft"]
    data = {"product": full_a.product.pk}
    for feature in (full_a.api_calls, full_a.seats):
        data[f"c-{draft.pk}-{feature.pk}-on"] = "on"
    data[f"c-{draft.pk}-{full_a.api_calls.pk}-limit"] = "10"  # below Team's 50,000
    response = client.post("/admin/catalog/tier/matrix/", data, follow=True)
    assert any("Scale draft (rank 40) grants less" in m for m in messages_of(response))
    assert 'data-testid="ladder-conflicts"' in response.content.decode()
    assert "is-flagged" in response.content.decode()


def test_discount_policy_page_shows_what_the_policy_gives(world_a, full_a):
    response = world_a.staff_client("product_manager").get(
        f"/admin/catalog/discountpolicy/{full_a.extras['policy'].pk}/change/"
    )
    body = response.content.decode()
    assert "What this policy gives" in body
    assert "20 %" in body and "(cap)" not in body.split("What this policy gives")[0]


def test_deleting_a_published_price_or_tier_is_not_offered(world_a, full_a):
    client = world_a.staff_client("owner")
    assert client.post(f"/admin/catalog/tier/{full_a.team.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Price.objects.filter(tier=full_a.team).count() == 2
