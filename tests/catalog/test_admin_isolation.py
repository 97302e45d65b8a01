"""Every catalog admin page, as tenant A's product manager, with tenant B's ids: nothing of B is listed,
opened, offered in a dropdown or changed."""

import pytest

from catalog.models import AddOn, Bundle, DiscountPolicy, Feature, GovernanceState, Meter, Price, Product, Tier

pytestmark = pytest.mark.django_db

MODELS = {
    "product": Product,
    "feature": Feature,
    "meter": Meter,
    "tier": Tier,
    "addon": AddOn,
    "bundle": Bundle,
    "discountpolicy": DiscountPolicy,
    "price": Price,
}


def b_row(full_b, name):
    return {
        "product": full_b.product,
        "feature": full_b.sso,
        "meter": full_b.extras["meter"],
        "tier": full_b.team,
        "addon": full_b.addon,
        "bundle": full_b.extras["bundle"],
        "discountpolicy": full_b.extras["policy"],
        "price": full_b.team.prices.first(),
    }[name]


@pytest.fixture
def pm_client(world_a, full_a, full_b):
    return world_a.staff_client("product_manager")


@pytest.mark.parametrize("name", list(MODELS))
def test_changelist_lists_only_the_own_tenants_rows(pm_client, full_a, full_b, name):
    response = pm_client.get(f"/admin/catalog/{name}/")
    assert response.status_code == 200
    listed = {obj.pk for obj in response.context["cl"].result_list}
    model = MODELS[name]
    assert listed, f"{name}: A's rows should be listed"
    assert listed <= set(model.objects.for_tenant(full_a.tenant).values_list("pk", flat=True))
    assert not listed & set(model.objects.for_tenant(full_b.tenant).values_list("pk", flat=True))
    assert b"Bee " not in response.content


@pytest.mark.parametrize("name", list(MODELS))
def test_change_page_of_another_tenants_row_does_not_open(pm_client, full_b, name):
    obj = b_row(full_b, name)
    response = pm_client.get(f"/admin/catalog/{name}/{obj.pk}/change/")
    assert response.status_code == 302  # Django admin: "doesn't exist", back to the index
    assert b"Bee " not in response.content
    followed = pm_client.get(f"/admin/catalog/{name}/{obj.pk}/change/", follow=True)
    assert b"Bee " not in followed.content


@pytest.mark.parametrize("name", ["tier", "addon", "bundle", "discountpolicy"])
def test_posting_to_another_tenants_row_changes_nothing(pm_client, full_b, name):
    obj = b_row(full_b, name)
    before = MODELS[name].objects.filter(pk=obj.pk).values().get()
    response = pm_client.post(f"/admin/catalog/{name}/{obj.pk}/change/", {"name": "Hijacked", "key": "hijack"})
    assert response.status_code in (302, 403, 404)
    assert MODELS[name].objects.filter(pk=obj.pk).values().get() == before


@pytest.mark.parametrize("transition", ["submit", "approve", "publish", "retire", "revise", "return_to_draft"])
def test_governance_buttons_with_another_tenants_id_are_404(pm_client, full_b, transition):
    for name, obj in (("tier", full_b.team), ("tier", full_b.extras["draft"]), ("bundle", full_b.extras["bundle"])):
        before = MODELS[name].objects.get(pk=obj.pk).state
        response = pm_client.post(f"/admin/catalog/{name}/{obj.pk}/governance/{transition}/")
        assert response.status_code == 404
        assert MODELS[name].objects.get(pk=obj.pk).state == before
    assert Tier.objects.for_tenant(full_b.tenant).filter(key="team").count() == 1  # no revision was made


FK_FIELDS = {
    "feature": ["product"],
    "meter": ["feature"],
    "tier": ["product"],
    "addon": ["product", "compatible_tiers"],
    "bundle": ["tier", "addons"],
}


@pytest.mark.parametrize("name", list(FK_FIELDS))
def test_add_form_dropdowns_offer_only_the_own_tenants_rows(pm_client, full_a, full_b, name):
    response = pm_client.get(f"/admin/catalog/{name}/add/")
    assert response.status_code == 200
    form = response.context["adminform"].form
    for field in FK_FIELDS[name]:
        offered = list(form.fields[field].queryset)
        assert offered, f"{name}.{field} should offer A's rows"
        assert {o.tenant_id for o in offered} == {full_a.tenant.pk}
    assert b"Bee " not in response.content


def test_inline_feature_dropdown_on_a_draft_tier_offers_only_own_features(pm_client, full_a):
    response = pm_client.get(f"/admin/catalog/tier/{full_a.extras['draft'].pk}/change/")
    assert response.status_code == 200
    for formset in response.context["inline_admin_formsets"]:
        if formset.formset.model.__name__ == "Entitlement":
            queryset = formset.formset.empty_form.fields["feature"].queryset
            assert {f.tenant_id for f in queryset} == {full_a.tenant.pk}
    assert b"Bee " not in response.content


def test_list_filters_offer_only_the_own_tenants_rows(pm_client, full_b):
    response = pm_client.get("/admin/catalog/tier/")
    assert b"Bee App" not in response.content
    response = pm_client.get("/admin/catalog/bundle/")
    assert b"Bee Team" not in response.content


def test_matrix_and_preview_show_only_the_own_tenant(pm_client, full_a, full_b):
    matrix = pm_client.get("/admin/catalog/tier/matrix/")
    assert matrix.status_code == 200
    assert {t.tenant_id for t in matrix.context["matrix"].tiers} == {full_a.tenant.pk}
    assert b"Bee " not in matrix.content
    foreign = pm_client.get(f"/admin/catalog/tier/matrix/?product={full_b.product.pk}")
    assert foreign.context["product"] == full_a.product  # a foreign id falls back to A's own product
    assert b"Bee " not in foreign.content
    preview = pm_client.get("/admin/catalog/tier/preview/?pending=1")
    assert preview.status_code == 200
    assert b"Business" in preview.content and b"Bee " not in preview.content


def test_matrix_post_with_another_tenants_cell_names_writes_nothing_there(pm_client, full_a, full_b):
    b_draft = full_b.extras["draft"]
    before = list(b_draft.entitlements.values("feature_id", "enabled", "limit"))
    prefix = f"c-{b_draft.pk}-{full_b.api_calls.pk}"
    pm_client.post(
        "/admin/catalog/tier/matrix/",
        {"product": full_a.product.pk, f"{prefix}-on": "on", f"{prefix}-limit": "1", f"{prefix}-enf": "hard"},
    )
    assert list(b_draft.entitlements.values("feature_id", "enabled", "limit")) == before


def test_a_staff_member_of_b_sees_bs_rows_not_as(world_b, full_a, full_b):
    client = world_b.staff_client("product_manager")
    response = client.get("/admin/catalog/tier/")
    assert {o.tenant_id for o in response.context["cl"].result_list} == {full_b.tenant.pk}
    assert client.get(f"/admin/catalog/tier/{full_a.team.pk}/change/").status_code == 302
    assert Tier.objects.get(pk=full_a.team.pk).state == GovernanceState.PUBLISHED
