"""In Chromium: a person new to Tierwise accepts an invitation (chooses a password, lands in that tenant),
and a sign-in locked after repeated failures says so on the page."""

import re

import pytest
from django.core import mail

from accounts import invitations
from accounts.models import Membership, Role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_new_person_accepts_an_invitation_sets_a_password_and_lands_in_the_tenant(browser_page, two_tenants):
    a, _ = two_tenants
    invitations.add_member(a.tenant, email="new.csm@tenant-a.test", role=Role.CSM, actor=a.staff[Role.OWNER])
    [message] = [m for m in mail.outbox if m.to == ["new.csm@tenant-a.test"]]
    path = re.search(r"https?://[^/\s]+(/invitations/[A-Za-z0-9_-]+/)", message.body).group(1)

    page = browser_page
    page.goto(page.base_url + path)
    assert "Join Tenant A" in page.inner_text("[data-testid=invitation]")
    page.fill("input[name=new_password1]", "Browser-chosen-passw0rd")
    page.fill("input[name=new_password2]", "Browser-chosen-passw0rd")
    with page.expect_navigation():
        page.click("[data-testid=accept]")
    page.wait_for_url("**/admin/")
    assert "Tenant A" in page.inner_text("[data-testid=current-tenant]")
    page.screenshot(path="var/screenshot-invitation-accepted.png", full_page=True)
    assert Membership.objects.filter(tenant=a.tenant, user__email="new.csm@tenant-a.test").exists()

    page.goto(page.base_url + path)  # used: the link works once
    assert "invalid or has expired" in page.inner_text("[data-testid=invitation-invalid]")


def test_a_locked_out_sign_in_shows_why_even_with_the_right_password(browser_page, world_a, settings):
    page = browser_page
    for _ in range(settings.AXES_FAILURE_LIMIT):
        page.goto(page.base_url + "/admin/login/")
        page.fill("input[name=username]", "owner@tenant-a.test")
        page.fill("input[name=password]", "not-the-password")
        page.click("input[type=submit]")
        page.wait_for_load_state()
    page.goto(page.base_url + "/admin/login/")
    page.fill("input[name=username]", "owner@tenant-a.test")
    page.fill("input[name=password]", "pw-for-tests-123")
    page.click("input[type=submit]")
    page.wait_for_selector("[data-testid=locked-out]")
    text = page.inner_text("[data-testid=locked-out]")
    assert "Sign-in paused" in text and "even the right password is refused" in text
    page.screenshot(path="var/screenshot-sign-in-locked.png", full_page=True)
