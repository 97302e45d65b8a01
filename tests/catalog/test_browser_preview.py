"""The pricing preview in a real browser: what a customer sees, monthly/annual switch included."""

import pytest
from django.conf import settings

from tests.catalog.factories import add_extras, build_ladder
from tests.conftest import sign_in

pytestmark = [pytest.mark.browser]


@pytest.fixture
def catalog(world_a, world_b):
    add_extras(build_ladder(world_b, prefix="Bee "), prefix="Bee ")
    return add_extras(build_ladder(world_a))


def test_pricing_preview_switches_between_monthly_and_annual_with_savings(browser_page, catalog, world_a):
    page = browser_page
    sign_in(page, world_a.staff["product_manager"])
    page.goto(f"{page.base_url}/admin/catalog/tier/preview/")

    cards = page.locator(".tw-card")
    assert cards.count() == 3
    assert cards.locator(".tw-card-name").all_inner_texts() == ["Free", "Team", "Business"]
    team = page.locator('.tw-card[data-tier="team"]')
    assert team.locator('[data-testid="monthly-amount"]').inner_text() == "$29"
    assert not team.locator('[data-testid="annual-effective"]').is_visible()
    anchor = page.locator(".tw-card.is-anchor")
    assert anchor.locator(".tw-card-name").inner_text() == "Business"
    assert anchor.locator(".tw-ribbon").inner_text().lower() == "most complete"
    assert "save up to 16.67 %" in page.locator(".tw-toggle").inner_text()

    page.get_by_role("button", name="Annual").click()
    assert page.locator(".tw-pricing").get_attribute("data-interval") == "year"
    assert page.get_by_role("button", name="Annual").get_attribute("aria-pressed") == "true"
    assert team.locator('[data-testid="annual-effective"]').inner_text() == "$24.17"
    assert team.locator('[data-testid="saving"]').inner_text() == "Save $58.00 a year (16.67 %) vs monthly"
    assert not team.locator('[data-testid="monthly-amount"]').is_visible()
    assert "50,000 API calls" in team.locator(".tw-ents").inner_text()
    assert "Clinic bundle" in page.locator(".tw-bundles").inner_text()
    assert "A 12-person clinic" in page.locator(".tw-bundles").inner_text()
    assert "2-year commitment: 10 % off." in page.locator('[data-testid="policy-note"]').inner_text()
    assert "Bee " not in page.content()
    page.screenshot(path=str(settings.VAR_DIR / "catalog-preview-annual.png"), full_page=True)

    page.get_by_role("button", name="Monthly").click()
    assert team.locator('[data-testid="monthly-amount"]').is_visible()


def test_pricing_preview_with_pending_drafts_shows_the_draft_marked_as_such(browser_page, catalog, world_a):
    page = browser_page
    sign_in(page, world_a.staff["product_manager"])
    page.goto(f"{page.base_url}/admin/catalog/tier/")
    with page.expect_popup() as popup:
        page.locator('[data-testid="preview-link"]').click()
    preview = popup.value
    preview.wait_for_load_state()
    assert "Scale draft" not in preview.content()
    preview.get_by_role("link", name="Include pending drafts").click()
    preview.wait_for_load_state()
    scale = preview.locator('.tw-card[data-tier="scale"]')
    assert "Draft" in scale.locator(".tw-pending").inner_text()
    preview.screenshot(path=str(settings.VAR_DIR / "catalog-preview-pending.png"), full_page=True)


def test_matrix_page_renders_and_saves_in_the_browser(browser_page, catalog, world_a):
    page = browser_page
    sign_in(page, world_a.staff["product_manager"])
    page.goto(f"{page.base_url}/admin/catalog/tier/matrix/")
    draft = catalog.extras["draft"]
    limit = page.locator(f'input[name="c-{draft.pk}-{catalog.api_calls.pk}-limit"]')
    limit.fill("3000000")
    page.get_by_role("button", name="Save draft cells").click()
    page.wait_for_load_state()
    assert "Saved 1 changed cell(s)." in page.locator(".messagelist").inner_text()
    page.screenshot(path=str(settings.VAR_DIR / "catalog-matrix.png"), full_page=True)
    from catalog.models import Entitlement

    assert Entitlement.objects.get(tier=draft, feature=catalog.api_calls).limit == 3_000_000
