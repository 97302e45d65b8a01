"""What TenantScopedViewSet guarantees whatever its subclasses do: the tenant filter, and 405 for missing methods."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate

from accounts.api_auth import ApiKeyPrincipal
from accounts.api_base import TenantScopedViewSet
from accounts.models import CustomerAccount, Tenant

pytestmark = pytest.mark.django_db


class LeakyAccountViewSet(TenantScopedViewSet):
    """A subclass that forgets the tenant: its queryset is every tenant's accounts."""

    lookup_field = "external_id"

    def tenant_queryset(self):
        return CustomerAccount.objects.all().order_by("pk")

    def list(self, request):
        return Response([a.external_id for a in self.get_queryset()])

    def retrieve(self, request, external_id):
        return Response({"external_id": self.get_object().external_id})


class TenantlessViewSet(TenantScopedViewSet):
    def tenant_queryset(self):
        return Tenant.objects.all()

    def list(self, request):
        return Response(list(self.get_queryset().values_list("pk", flat=True)))


def call(viewset, actions, world, **kwargs):
    key = world.api_key
    request = APIRequestFactory().get("/x")
    force_authenticate(request, user=ApiKeyPrincipal(key), token=key)
    return viewset.as_view(actions)(request, **kwargs)


@pytest.fixture
def worlds(two_tenants):
    from accounts import services

    a, b = two_tenants
    for world in (a, b):
        world.api_key, _ = services.create_api_key(world.tenant, name="t", scopes=["read"], actor="test")
    CustomerAccount.objects.create(tenant=b.tenant, external_id="only-in-b", name="B only")
    return a, b


def test_an_unscoped_subclass_queryset_still_lists_only_the_callers_tenant(worlds):
    a, _ = worlds
    response = call(LeakyAccountViewSet, {"get": "list"}, a)
    assert response.status_code == 200
    assert response.data == ["acct-1"]


def test_an_unscoped_subclass_queryset_answers_404_for_another_tenants_id(worlds):
    a, b = worlds
    assert call(LeakyAccountViewSet, {"get": "retrieve"}, a, external_id="only-in-b").status_code == 404
    assert call(LeakyAccountViewSet, {"get": "retrieve"}, b, external_id="only-in-b").status_code == 200


def test_a_queryset_of_a_model_without_a_tenant_is_refused(worlds):
    a, _ = worlds
    with pytest.raises(ImproperlyConfigured):
        call(TenantlessViewSet, {"get": "list"}, a)


def test_overriding_get_queryset_fails_at_class_creation():
    with pytest.raises(TypeError):

        class Bad(TenantScopedViewSet):
            def get_queryset(self):
                return CustomerAccount.objects.all()


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("get", "/api/v1/events", "POST"),
        ("get", "/api/v1/entitlements/check", "POST"),
        ("put", "/api/v1/events", "POST"),
        ("delete", "/api/v1/accounts/acct-1", "GET, PATCH"),
        ("post", "/api/v1/catalog/tiers", "GET"),
    ],
)
def test_a_method_the_endpoint_lacks_answers_405_with_allow_in_the_house_shape(world_a, method, path, allowed):
    response = getattr(world_a.api(), method)(path)
    assert response.status_code == 405
    error = response.json()["error"]
    assert error["code"] == "method_not_allowed"
    assert "None" not in error["message"] and "scope" not in error["message"]
    assert set(allowed.split(", ")) <= set(response["Allow"].split(", "))


def test_a_method_the_endpoint_lacks_still_needs_a_key_first(world_a):
    from rest_framework.test import APIClient

    assert APIClient().get("/api/v1/events").status_code == 401


def test_a_scope_the_key_lacks_is_still_403_on_a_method_the_endpoint_has(world_a):
    response = world_a.api("read").post("/api/v1/events", {"events": []}, format="json")
    assert response.status_code == 403 and "'ingest'" in response.json()["error"]["message"]


@pytest.mark.parametrize("path", ["/api/v1/events", "/api/v1/entitlements/check", "/api/v1/accounts"])
def test_options_answers_the_endpoints_description_not_500(world_a, path):
    """Found by schemathesis: DRF's OPTIONS metadata called get_serializer(), which these views don't have."""
    response = world_a.api().options(path)
    assert response.status_code == 200
    assert response.json()["name"] and "actions" not in response.json()
