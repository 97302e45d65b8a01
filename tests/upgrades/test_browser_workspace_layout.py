"""The pages staff use fit their screens: no sideways scrolling on a 375 px phone (workspace, usage, home), the
customer form at 1280 px, and the entitlement matrix shows its last column at 1280 px. Screenshots land in var/."""

from __future__ import annotations

import pytest

from accounts.models import Role
from tests.conftest import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"


def open_at(page, path: str, width: int, shot: str) -> int:
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(page.base_url + path)
    page.wait_for_load_state("networkidle")
    page.screenshot(path=f"var/screenshot-{shot}-{width}.png", full_page=True)
    return page.evaluate(OVERFLOW)


def test_workspace_usage_and_home_fit_a_375_px_phone(browser_page, workspaces):
    a, _ = workspaces
    sign_in(browser_page, a.world.staff[Role.OWNER])
    account = a.accounts["acct-1"]
    pages = {
        "home": "/",
        "workspace": "/admin/",
        "usage": "/admin/usage/usageaccount/",
        "usage-account": f"/admin/usage/usageaccount/{account.pk}/change/",
    }
    overflow = {name: open_at(browser_page, path, 375, name) for name, path in pages.items()}
    assert overflow == dict.fromkeys(pages, 0)


def test_the_customer_form_fits_1280_px(browser_page, workspaces):
    a, _ = workspaces
    sign_in(browser_page, a.world.staff[Role.OWNER])
    path = f"/admin/accounts/customeraccount/{a.accounts['acct-1'].pk}/change/"
    assert open_at(browser_page, path, 1280, "customer-form") == 0


def test_the_entitlement_matrix_shows_its_last_column_at_1280_px(browser_page, workspaces):
    a, _ = workspaces
    sign_in(browser_page, a.world.staff[Role.PRODUCT_MANAGER])
    path = f"/admin/catalog/tier/matrix/?product={a.ladder.product.pk}"
    assert open_at(browser_page, path, 1280, "matrix") == 0
    right = browser_page.evaluate(
        "() => { const cells = document.querySelectorAll('.tw-matrix thead th');"
        " return cells[cells.length - 1].getBoundingClientRect().right; }"
    )
    assert right <= 1280, f"the last tier column ends at {right} px, past the 1280 px window"
