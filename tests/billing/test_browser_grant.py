"""'Grant a trial / CSM grant' on a licence's admin page, driven in Chromium as the CSM who uses it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import Role
from billing.models import LicenseGrant
from tests.billing.factories import make_catalog
from tests.billing.helpers import billed_license
from tests.conftest import sign_in_with_form

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_csm_grants_a_trial_from_the_licence_page_after_being_told_what_was_missing(
    browser_page, two_tenants, standin
):
    a, b = two_tenants
    billed = billed_license(a.tenant, a.account, standin)
    theirs = make_catalog(b.tenant)
    business = billed.catalog.tiers["business"]
    page = browser_page
    sign_in_with_form(page, a.staff[Role.CSM].email, at="/admin/login/")

    licence_url = reverse("admin:billing_license_change", args=[billed.license.pk])
    page.goto(page.base_url + licence_url)
    assert "No grants." in page.inner_text(".billing-grants")
    page.click("[data-testid=grant]")
    page.wait_for_url("**/grant/")
    assert "Grant a trial or CSM grant" in page.inner_text("#content")
    # The pickers offer this tenant's published tiers only, never the other tenant's look-alikes.
    offered = page.eval_on_selector_all("select[name=tier] option", "options => options.map(o => o.value)")
    assert str(business.pk) in offered
    assert not {str(t.pk) for t in theirs.tiers.values()} & set(offered)

    # Neither a tier nor an add-on: the page says why and nothing is granted.
    page.select_option("select[name=kind]", "csm_grant")
    page.fill("input[name=days]", "7")
    page.click("[data-testid=submit]")
    page.wait_for_selector("[data-testid=form-errors]")
    assert "Give a tier or an add-on" in page.inner_text("[data-testid=form-errors]")
    assert not LicenseGrant.objects.exists()

    page.select_option("select[name=kind]", "trial")
    page.select_option("select[name=tier]", str(business.pk))
    page.fill("input[name=days]", "14")
    page.fill("input[name=reason]", "Evaluating SSO")
    page.click("[data-testid=submit]")
    page.wait_for_url(f"**{licence_url}")

    assert "Granted for 14 day(s)." in page.inner_text(".messagelist")
    row = page.inner_text(".billing-grants tbody tr")
    assert "Trial" in row and business.name in row and "Evaluating SSO" in row
    grant = LicenseGrant.objects.get()
    assert (grant.tenant_id, grant.account_id, grant.kind, grant.tier_id) == (
        a.tenant.pk,
        a.account.pk,
        "trial",
        business.pk,
    )
    assert 13 <= (grant.ends_at - grant.starts_at).days <= 14


def test_an_analyst_sees_no_grant_button_on_the_licence_page(browser_page, world_a, standin):
    billed = billed_license(world_a.tenant, world_a.account, standin)
    page = browser_page
    sign_in_with_form(page, world_a.staff[Role.ANALYST].email, at="/admin/login/")
    page.goto(page.base_url + reverse("admin:billing_license_change", args=[billed.license.pk]))
    assert page.locator("[data-testid=grant]").count() == 0
    response = page.goto(page.base_url + reverse("admin:billing_license_grant", args=[billed.license.pk]))
    assert response.status == 403
