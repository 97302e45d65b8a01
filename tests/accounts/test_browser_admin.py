import pytest

from accounts.models import Membership, Role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_staff_sign_in_see_only_their_tenant_and_switch(browser_page, two_tenants):
    a, b = two_tenants
    Membership.objects.create(tenant=b.tenant, user=a.staff[Role.OWNER], role=Role.ANALYST)
    page = browser_page
    page.goto(page.base_url + "/admin/login/")
    page.fill("input[name=username]", "owner@tenant-a.test")
    page.fill("input[name=password]", "pw-for-tests-123")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    assert "Tenant A" in page.inner_text("[data-testid=current-tenant]")

    page.goto(page.base_url + "/admin/accounts/customeraccount/")
    rows = page.inner_text("#result_list")
    assert "Tenant A Customer" in rows and "Tenant B Customer" not in rows

    with page.expect_navigation():
        page.select_option("select[name=tenant]", str(b.tenant.pk))
    assert "Tenant B" in page.inner_text("[data-testid=current-tenant]")
    rows = page.inner_text("#result_list")
    assert "Tenant B Customer" in rows and "Tenant A Customer" not in rows
    page.screenshot(path="var/screenshot-admin-accounts.png", full_page=True)
