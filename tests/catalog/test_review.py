"""Catalog review: the approval comment is kept, Approve/Publish show the diff and impact first, and a
bundle on a retired tier is no longer shown to customers."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts import services as account_services
from accounts.models import AuditEntry
from catalog import hooks, review, selectors, services
from catalog.errors import InvalidInput
from catalog.models import Bundle, GovernanceState, Tier
from catalog.services import Grant

pytestmark = pytest.mark.django_db


def team_v2(ladder, *, submit: bool = True) -> Tier:
    """Team v2: $35 a month instead of $29, 80k API calls instead of 50k, one more outcome."""
    v2 = services.revise(ladder.tenant, obj=ladder.team, actor=ladder.pm).obj
    services.update_draft(ladder.tenant, obj=v2, actor=ladder.pm, outcomes=["Room for 80k calls"])
    services.set_price(ladder.tenant, owner=v2, interval="month", amount=3_500, actor=ladder.pm)
    services.set_entitlement(
        ladder.tenant, owner=v2, feature=ladder.api_calls, actor=ladder.pm, grant=Grant(limit=80_000)
    )
    if submit:
        services.submit_for_approval(ladder.tenant, obj=v2, actor=ladder.pm)
    return Tier.objects.get(pk=v2.pk)


@pytest.fixture
def licences_on_team(full_a):
    """Stands in for billing's registration: 4 licences on Team v1 bringing in $116.00 a month."""

    def count(tenant, ids):
        return 4 if full_a.team.pk in ids and tenant == full_a.tenant else 0

    def mrr(tenant, ids):
        return {"USD": 11_600} if full_a.team.pk in ids and tenant == full_a.tenant else {}

    hooks.register_holder_counter(count, mrr=mrr)
    yield
    hooks.unregister_holder_counter(count)


# --- The approval comment --------------------------------------------------------------------


def test_the_approval_comment_is_stored_on_the_item_and_its_prices_and_written_to_the_audit_log(full_a):
    v2 = team_v2(full_a)
    services.approve(full_a.tenant, obj=v2, actor=full_a.approver, comment="  Price checked with finance.  ")
    v2.refresh_from_db()
    assert v2.approval_comment == "Price checked with finance."
    assert set(v2.prices.values_list("approval_comment", flat=True)) == {"Price checked with finance."}
    entry = AuditEntry.objects.filter(tenant=full_a.tenant, action="tier.approved", object_id=str(v2.pk)).get()
    assert entry.after["approval_comment"] == "Price checked with finance."
    assert entry.actor == full_a.approver


def test_an_over_long_approval_comment_is_refused_and_nothing_is_approved(full_a):
    v2 = team_v2(full_a)
    with pytest.raises(InvalidInput) as exc:
        services.approve(full_a.tenant, obj=v2, actor=full_a.approver, comment="x" * 1001)
    assert "comment" in exc.value.details
    v2.refresh_from_db()
    assert v2.approved_at is None and v2.approval_comment == ""


def test_returning_to_draft_clears_the_approval_comment(full_a):
    v2 = team_v2(full_a)
    services.approve(full_a.tenant, obj=v2, actor=full_a.approver, comment="Fine by me")
    services.return_to_draft(full_a.tenant, obj=v2, actor=full_a.pm, reason="one more change")
    v2.refresh_from_db()
    assert v2.approval_comment == "" and v2.approved_by is None


# --- The diff and the impact -----------------------------------------------------------------


def test_the_review_compares_prices_entitlements_and_outcomes_with_the_published_version(full_a, licences_on_team):
    v2 = team_v2(full_a)
    result = review.review_change(full_a.tenant, obj=v2)
    assert result.previous.pk == full_a.team.pk
    sections = {s.title: s for s in result.visible_sections}
    assert [(c.label, c.before, c.after) for c in sections["Prices"].changes] == [
        ("Monthly", "$29.00 / seat / month", "$35.00 / seat / month")
    ]
    assert [(c.label, c.before, c.after) for c in sections["Entitlements"].changes] == [
        ("Api Calls", "50,000 API calls", "80,000 API calls")
    ]
    assert sections["Outcomes"].added == ["Room for 80k calls"]
    assert "Details" not in sections  # nothing else changed


def test_the_impact_names_the_licences_their_mrr_and_the_bundles_built_on_the_retiring_version(
    full_a, licences_on_team
):
    result = review.review_change(full_a.tenant, obj=team_v2(full_a))
    assert result.impact.licences == 4
    assert result.impact.mrr == [("USD", 11_600)]
    text = " ".join(result.impact.sentences)
    assert "Publishing retires Team v1" in text and "4 active licence(s)" in text and "$116.00 MRR" in text
    assert [b.bundle.key for b in result.impact.bundles] == ["clinics"]
    assert "no longer shown to customers" in result.impact.bundles[0].sentence


def test_a_first_version_has_no_previous_and_retires_nothing(full_a):
    draft = full_a.extras["draft"]
    services.submit_for_approval(full_a.tenant, obj=draft, actor=full_a.pm)
    result = review.review_change(full_a.tenant, obj=draft)
    assert result.previous is None and result.impact.licences == 0 and not result.impact.bundles
    assert "Monthly: $159.00 / seat / month" in {s.title: s for s in result.sections}["Prices"].added


def test_another_tenants_licences_never_count_in_the_impact(full_a, full_b, licences_on_team):
    v2 = team_v2(full_b)
    result = review.review_change(full_b.tenant, obj=v2)
    assert result.impact.licences == 0 and result.impact.mrr == []
    assert [b.bundle.tenant_id for b in result.impact.bundles] == [full_b.tenant.pk]


# --- The admin: confirmation before Approve and Publish --------------------------------------


def test_approving_without_the_review_sends_you_to_it_and_approves_nothing(world_a, full_a):
    v2 = team_v2(full_a)
    owner = world_a.staff_client("owner")
    response = owner.post(f"/admin/catalog/tier/{v2.pk}/governance/approve/")
    assert response.status_code == 302
    assert response["Location"].endswith(f"/admin/catalog/tier/{v2.pk}/governance/approve/review/")
    assert Tier.objects.get(pk=v2.pk).approved_at is None


def test_the_review_page_shows_the_diff_and_impact_and_approving_from_it_keeps_the_comment(
    world_a, full_a, licences_on_team
):
    v2 = team_v2(full_a)
    owner = world_a.staff_client("owner")
    page = owner.get(f"/admin/catalog/tier/{v2.pk}/governance/approve/review/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "$29.00 / seat / month" in body and "$35.00 / seat / month" in body
    assert "4 active licence(s)" in body and "$116.00 MRR" in body
    assert "Clinic bundle is built on Team v1" in body
    assert 'name="comment"' in body
    owner.post(f"/admin/catalog/tier/{v2.pk}/governance/approve/", {"confirmed": "1", "comment": "Looks right to me"})
    v2.refresh_from_db()
    assert v2.is_approved and v2.approval_comment == "Looks right to me"
    change_page = owner.get(f"/admin/catalog/tier/{v2.pk}/change/").content.decode()
    assert "Looks right to me" in change_page
    assert f'href="/admin/catalog/tier/{v2.pk}/governance/publish/review/"' in change_page


def test_publishing_from_the_list_shows_the_review_first_and_publishes_only_when_confirmed(world_a, full_a):
    v2 = team_v2(full_a)
    services.approve(full_a.tenant, obj=v2, actor=full_a.approver)
    pm = world_a.staff_client("product_manager")
    data = {"action": "publish_selected", "_selected_action": [v2.pk]}
    page = pm.post("/admin/catalog/tier/", data)
    assert page.status_code == 200 and b'data-testid="review"' in page.content
    assert Tier.objects.get(pk=v2.pk).state == GovernanceState.AWAITING_APPROVAL
    pm.post("/admin/catalog/tier/", {**data, "confirmed": "1"})
    assert Tier.objects.get(pk=v2.pk).state == GovernanceState.PUBLISHED
    assert Tier.objects.get(pk=full_a.team.pk).state == GovernanceState.RETIRED


def test_the_review_page_of_another_tenants_item_is_404(world_a, full_a, full_b):
    v2 = team_v2(full_b)
    response = world_a.staff_client("owner").get(f"/admin/catalog/tier/{v2.pk}/governance/approve/review/")
    assert response.status_code == 404
    assert b"Bee " not in response.content


def test_only_approve_and_publish_have_a_review_page(world_a, full_a):
    response = world_a.staff_client("owner").get(f"/admin/catalog/tier/{full_a.team.pk}/governance/retire/review/")
    assert response.status_code == 404


# --- A bundle on a retired tier is not shown to customers ------------------------------------


def publish_team_v2(ladder) -> Tier:
    v2 = team_v2(ladder)
    services.approve(ladder.tenant, obj=v2, actor=ladder.approver)
    return services.publish(ladder.tenant, obj=v2, actor=ladder.pm).obj


def test_a_bundle_on_a_retired_tier_leaves_the_pricing_table_the_api_and_the_bundle_list(full_a):
    publish_team_v2(full_a)
    bundle = Bundle.objects.get(tenant=full_a.tenant, key="clinics")
    assert bundle.state == GovernanceState.PUBLISHED and bundle.tier.state == GovernanceState.RETIRED
    tables = selectors.build_pricing_tables(full_a.tenant)
    assert [b.key for t in tables for b in t.bundles] == []
    assert all(card.bundles == [] for t in tables for card in t.tiers)
    assert list(selectors.list_published_bundles(full_a.tenant)) == []
    _, secret = account_services.create_api_key(full_a.tenant, name="t", scopes=("read",), actor="test")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    body = api.get("/api/v1/catalog/tiers").json()
    assert body["bundles"] == [] and all(t["bundles"] == [] for t in body["tiers"])


def test_a_bundle_on_a_published_tier_is_still_shown(full_a):
    tables = selectors.build_pricing_tables(full_a.tenant)
    assert [b.key for t in tables for b in t.bundles] == ["clinics"]
    assert [b.key for b in selectors.list_published_bundles(full_a.tenant)] == ["clinics"]


def test_the_customer_facing_preview_hides_a_bundle_on_a_retired_tier(world_a, full_a):
    publish_team_v2(full_a)
    page = world_a.staff_client("product_manager").get("/admin/catalog/tier/preview/")
    assert page.status_code == 200
    assert b"Clinic bundle" not in page.content
