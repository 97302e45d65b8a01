"""'Change plan' on a licence's admin page: form -> Stripe's quote (every line) -> Confirm -> it settles."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import Role
from billing.models import PlanChange, PlanChangeState
from tests.billing.helpers import billed_license
from tests.conftest import wait_for


def change_plan_url(license) -> str:
    return reverse("admin:billing_license_change_plan", args=[license.pk])


@pytest.mark.browser
@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_csm_changes_a_plan_from_the_licence_page_sees_every_quote_line_confirms_and_watches_it_settle(
    browser_page, world_a, standin, live_server, celery_worker_process
):
    billed = billed_license(
        world_a.tenant,
        world_a.account,
        standin,
        webhook_url=f"{live_server.url}/billing/stripe/webhook/{world_a.tenant.slug}/",
    )
    business = billed.catalog.prices["business-month"]
    page = browser_page
    page.goto(page.base_url + "/admin/login/")
    page.fill("input[name=username]", world_a.staff[Role.CSM].email)
    page.fill("input[name=password]", "pw-for-tests-123")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")

    page.goto(page.base_url + reverse("admin:billing_license_change", args=[billed.license.pk]))
    page.click("[data-testid=change-plan]")
    page.wait_for_url("**/change-plan/")
    page.select_option("select[name=price]", str(business.pk))
    page.fill("input[name=seats]", "4")
    page.click("[data-testid=submit]")
    page.wait_for_selector("[data-testid=quote-lines]")

    plan_change = PlanChange.objects.get(tenant=world_a.tenant)
    rows = page.locator("[data-testid=quote-lines] tbody tr")
    assert rows.count() == len(plan_change.quote_lines) >= 2
    for line in plan_change.quote_lines:
        assert line["description"] in page.inner_text("[data-testid=quote-lines]")
    assert plan_change.target_seats == 4

    page.click("[data-testid=confirm]")
    page.wait_for_url(f"**/admin/billing/planchange/{plan_change.pk}/change/")
    settled = wait_for(
        lambda: plan_change if (plan_change.refresh_from_db() or plan_change.state == "settled") else None, timeout=30
    )
    assert settled.charged_amount == plan_change.quote_amount_due
    page.reload()
    assert "Settled" in page.inner_text("#content")
    assert billed.refresh().tier.key == "business"


@pytest.mark.integration
@pytest.mark.django_db
def test_an_analyst_sees_no_change_plan_button_and_is_refused_the_pages(world_a, standin):
    billed = billed_license(world_a.tenant, world_a.account, standin)
    analyst = world_a.staff_client(Role.ANALYST)

    page = analyst.get(reverse("admin:billing_license_change", args=[billed.license.pk]))
    assert page.status_code == 200
    assert b'data-testid="change-plan"' not in page.content
    assert analyst.get(change_plan_url(billed.license)).status_code == 403
    response = analyst.post(
        change_plan_url(billed.license), {"price": billed.catalog.prices["business-month"].pk, "seats": 3}
    )
    assert response.status_code == 403
    assert not PlanChange.objects.exists()


@pytest.mark.integration
@pytest.mark.django_db
def test_another_tenants_licence_cannot_be_quoted_or_confirmed(two_tenants, standin):
    a, b = two_tenants
    theirs = billed_license(b.tenant, b.account, standin)
    csm_a = a.staff_client(Role.CSM)

    assert csm_a.get(change_plan_url(theirs.license)).status_code == 403
    assert (
        csm_a.post(
            change_plan_url(theirs.license), {"price": theirs.catalog.prices["business-month"].pk, "seats": 3}
        ).status_code
        == 403
    )
    assert not PlanChange.objects.exists()


@pytest.mark.integration
@pytest.mark.django_db
def test_a_bad_form_shows_the_reason_and_quotes_nothing(world_a, standin):
    billed = billed_license(world_a.tenant, world_a.account, standin)
    csm = world_a.staff_client(Role.CSM)
    url = change_plan_url(billed.license)

    assert csm.get(url).status_code == 200
    zero = csm.post(url, {"price": billed.catalog.prices["business-month"].pk, "seats": 0})
    assert zero.status_code == 200 and "greater than or equal to 1" in zero.content.decode()
    same = csm.post(url, {"price": billed.license.price_id, "seats": billed.license.seats})
    assert same.status_code == 200 and "already holds exactly this" in same.content.decode()
    assert not PlanChange.objects.exists()


@pytest.mark.integration
@pytest.mark.django_db
def test_the_quote_page_confirms_once_and_then_links_to_the_plan_change(world_a, standin):
    billed = billed_license(world_a.tenant, world_a.account, standin)
    csm = world_a.staff_client(Role.CSM)
    quoted = csm.post(
        change_plan_url(billed.license), {"price": billed.catalog.prices["business-month"].pk, "seats": 3}
    )
    plan_change = PlanChange.objects.get()
    assert quoted.status_code == 302
    quote_page = csm.get(quoted["Location"])
    assert 'data-testid="confirm"' in quote_page.content.decode()

    confirmed = csm.post(quoted["Location"])

    assert confirmed.status_code == 302
    assert confirmed["Location"] == reverse("admin:billing_planchange_change", args=[plan_change.pk])
    plan_change.refresh_from_db()
    assert plan_change.state in (PlanChangeState.PENDING, PlanChangeState.SUBMITTED, PlanChangeState.SETTLED)
    assert "follow it" in csm.get(quoted["Location"]).content.decode()


def grant_url(license) -> str:
    return reverse("admin:billing_license_grant", args=[license.pk])


@pytest.mark.integration
@pytest.mark.django_db
def test_a_csm_grants_a_time_limited_trial_from_the_licence_page(world_a, standin):
    from billing.models import LicenseGrant

    billed = billed_license(world_a.tenant, world_a.account, standin)
    csm = world_a.staff_client(Role.CSM)
    licence_page = csm.get(reverse("admin:billing_license_change", args=[billed.license.pk])).content.decode()
    assert 'data-testid="grant"' in licence_page

    response = csm.post(
        grant_url(billed.license),
        {"kind": "trial", "tier": billed.catalog.tiers["business"].pk, "days": 14, "reason": "evaluating SSO"},
    )

    assert response.status_code == 302
    grant = LicenseGrant.objects.get(tenant=world_a.tenant)
    assert (grant.kind, grant.tier.key, grant.account_id) == ("trial", "business", world_a.account.pk)
    assert 13 <= (grant.ends_at - grant.starts_at).days <= 14


@pytest.mark.integration
@pytest.mark.django_db
def test_a_grant_naming_neither_tier_nor_addon_is_refused_with_the_reason(world_a, standin):
    from billing.models import LicenseGrant

    billed = billed_license(world_a.tenant, world_a.account, standin)

    response = world_a.staff_client(Role.CSM).post(grant_url(billed.license), {"kind": "csm_grant", "days": 7})

    assert response.status_code == 200
    assert "Give a tier or an add-on" in response.content.decode()
    assert not LicenseGrant.objects.exists()


@pytest.mark.integration
@pytest.mark.django_db
def test_grants_are_refused_to_analysts_and_on_other_tenants_licences(two_tenants, standin):
    from billing.models import LicenseGrant

    a, b = two_tenants
    mine = billed_license(a.tenant, a.account, standin)
    theirs = billed_license(b.tenant, b.account, standin)
    data = {"kind": "trial", "tier": mine.catalog.tiers["business"].pk, "days": 7}

    assert a.staff_client(Role.ANALYST).post(grant_url(mine.license), data).status_code == 403
    assert a.staff_client(Role.CSM).post(grant_url(theirs.license), data).status_code == 403
    assert not LicenseGrant.objects.exists()


@pytest.mark.integration
@pytest.mark.django_db
def test_more_seats_than_the_tier_allows_is_refused_in_the_admin_as_over_the_api(world_a, standin):
    from catalog.models import Entitlement, Feature, FeatureKind

    billed = billed_license(world_a.tenant, world_a.account, standin)
    tier = billed.catalog.tiers["business"]
    seats = Feature.objects.create(
        tenant=world_a.tenant, product=tier.product, key="seats", name="Users", kind=FeatureKind.SEATS
    )
    Entitlement.objects.create(tenant=world_a.tenant, tier=tier, feature=seats, limit=10)
    csm = world_a.staff_client(Role.CSM)
    url = change_plan_url(billed.license)
    business = billed.catalog.prices["business-month"].pk

    refused = csm.post(url, {"price": business, "seats": 11})

    assert refused.status_code == 200 and "The tier allows at most 10 seat(s)." in refused.content.decode()
    assert not PlanChange.objects.exists()
    assert csm.post(url, {"price": business, "seats": 10}).status_code == 302


@pytest.mark.integration
@pytest.mark.django_db
def test_the_admin_sells_an_addon_with_the_tiers_it_names_or_with_any_tier_when_it_names_none(world_a, standin):
    from tests.billing.factories import add_addon

    billed = billed_license(world_a.tenant, world_a.account, standin)
    add_addon(billed.catalog, "team-only", tiers=("team",))
    add_addon(billed.catalog, "anywhere")
    csm = world_a.staff_client(Role.CSM)
    url = change_plan_url(billed.license)
    business = billed.catalog.prices["business-month"].pk

    form = csm.get(url).content.decode()
    assert "Team Only" in form and "(with Team only)" in form and "sold with every tier" in form
    refused = csm.post(url, {"price": business, "seats": 3, "addons": [billed.catalog.prices["team-only-month"].pk]})
    assert refused.status_code == 200 and "Team Only is not sold with Business." in refused.content.decode()
    assert not PlanChange.objects.exists()
    sold = csm.post(url, {"price": business, "seats": 3, "addons": [billed.catalog.prices["anywhere-month"].pk]})
    assert sold.status_code == 302
    assert [p.addon.key for p in PlanChange.objects.get().target_addon_prices.all()] == ["anywhere"]
