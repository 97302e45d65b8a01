"""/api/v1/accounts and their contacts."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import selectors, services
from accounts.api_base import TenantScopedViewSet
from accounts.errors import InvalidInput
from accounts.models import CustomerAccount, LifecycleStage, Membership, Segment, SizeBand, external_id_validator


class ContactSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    role = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    marketing_consent = serializers.BooleanField(required=False, default=False)
    locale = serializers.CharField(
        max_length=16,
        required=False,
        allow_blank=True,
        default="",
        help_text="How the portal writes money for this person: en_GB, de_DE, fr_FR…; empty: the tenant's locale.",
    )
    created_at = serializers.DateTimeField(read_only=True)


class AccountOutputSerializer(serializers.Serializer):
    external_id = serializers.CharField()
    name = serializers.CharField()
    industry = serializers.CharField()
    size_band = serializers.CharField()
    employee_count = serializers.IntegerField(allow_null=True)
    segment = serializers.CharField()
    territory = serializers.CharField()
    lifecycle_stage = serializers.CharField()
    assigned_csm = serializers.SerializerMethodField()
    attributes = serializers.JSONField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_assigned_csm(self, obj: CustomerAccount) -> str | None:
        return obj.assigned_csm.email if obj.assigned_csm_id else None


ATTRIBUTES_MAX_DEPTH = 10


def _bad_text(value: Any) -> str | None:
    """Why a string (or any string inside a JSON value) cannot be stored, or None.

    PostgreSQL's text and jsonb hold neither NUL characters nor unpaired surrogates; DRF would also echo
    such a string back in its error message and fail to encode the answer (a 500).
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                return "May not contain NUL characters."
            try:
                item.encode()
            except UnicodeEncodeError:
                return "Strings may not contain unpaired surrogates."
    return None


def _depth(value: Any) -> int:
    """How deeply a JSON value nests objects and arrays (a scalar is 0), counted without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


class AccountInputSerializer(serializers.Serializer):
    external_id = serializers.CharField(max_length=128, validators=[external_id_validator], trim_whitespace=False)
    name = serializers.CharField(max_length=200)
    industry = serializers.CharField(max_length=64, required=False, allow_blank=True)
    size_band = serializers.ChoiceField(choices=SizeBand.choices, required=False, allow_blank=True)
    employee_count = serializers.IntegerField(min_value=0, max_value=10_000_000, required=False, allow_null=True)
    segment = serializers.ChoiceField(choices=Segment.choices, required=False, allow_blank=True)
    territory = serializers.CharField(max_length=64, required=False, allow_blank=True)
    lifecycle_stage = serializers.ChoiceField(choices=LifecycleStage.choices, required=False)
    assigned_csm = serializers.EmailField(required=False, allow_null=True, help_text="A staff member's email.")
    attributes = serializers.DictField(
        required=False, help_text=f"Free-form JSON object, nested at most {ATTRIBUTES_MAX_DEPTH} levels deep."
    )

    def to_internal_value(self, data: Any) -> Any:
        # Before any field parses: a field's own error message would echo the bad string back.
        if isinstance(data, dict):
            bad = {
                name: [reason] for name, value in data.items() if name in self.fields and (reason := _bad_text(value))
            }
            if bad:
                raise serializers.ValidationError(bad)
            attributes = data.get("attributes")
            if isinstance(attributes, dict) and _depth(attributes) > ATTRIBUTES_MAX_DEPTH:
                raise serializers.ValidationError(
                    {"attributes": [f"Nested more than {ATTRIBUTES_MAX_DEPTH} levels deep (objects and arrays)."]}
                )
        return super().to_internal_value(data)

    def validate_assigned_csm(self, value: str | None) -> Any:
        if value is None:
            return None
        membership = (
            Membership.objects.for_tenant(self.context["tenant"])
            .select_related("user")
            .filter(user__email__iexact=value)
            .first()
        )
        if membership is None:
            raise serializers.ValidationError("Not a staff member of this tenant.")
        return membership.user


class AccountPatchSerializer(AccountInputSerializer):
    external_id = None  # the id is the URL; it never changes
    name = serializers.CharField(max_length=200, required=False)


class AccountViewSet(TenantScopedViewSet):
    """Customer accounts, addressed by the vendor's own `external_id`."""

    lookup_field = "external_id"
    lookup_value_regex = r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}"
    serializer_class = AccountOutputSerializer

    def tenant_queryset(self):
        params = self.request.query_params
        bad = {
            name: ["May not contain NUL characters."]
            for name in ("lifecycle_stage", "segment", "search")
            if "\x00" in params.get(name, "")
        }
        if bad:
            raise InvalidInput("Invalid query parameters.", details=bad)
        return selectors.list_customer_accounts(
            self.tenant,
            lifecycle_stage=params.get("lifecycle_stage"),
            segment=params.get("segment"),
            search=params.get("search"),
        )

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(AccountOutputSerializer(page, many=True).data)

    @extend_schema(request=AccountInputSerializer, responses={201: AccountOutputSerializer})
    def create(self, request: Request) -> Response:
        data = AccountInputSerializer(data=request.data, context={"tenant": self.tenant})
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        account = services.create_customer_account(
            self.tenant, external_id=fields.pop("external_id"), name=fields.pop("name"), actor=self.actor, **fields
        )
        return Response(AccountOutputSerializer(account).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request: Request, external_id: str) -> Response:
        account = selectors.get_account_for_tenant(self.tenant, external_id)
        return Response(AccountOutputSerializer(account).data)

    @extend_schema(request=AccountPatchSerializer, responses=AccountOutputSerializer)
    def partial_update(self, request: Request, external_id: str) -> Response:
        account = selectors.get_account_for_tenant(self.tenant, external_id)
        data = AccountPatchSerializer(data=request.data, partial=True, context={"tenant": self.tenant})
        data.is_valid(raise_exception=True)
        account = services.update_customer_account(
            self.tenant, account=account, actor=self.actor, **data.validated_data
        )
        return Response(AccountOutputSerializer(account).data)

    @extend_schema(methods=["GET"], responses=ContactSerializer(many=True))
    @extend_schema(methods=["POST"], request=ContactSerializer, responses={201: ContactSerializer})
    @action(detail=True, methods=["get", "post"], serializer_class=ContactSerializer)
    def contacts(self, request: Request, external_id: str) -> Response:
        account = selectors.get_account_for_tenant(self.tenant, external_id)
        if request.method == "GET":
            page = self.paginate_queryset(selectors.list_contacts(self.tenant, account=account))
            return self.get_paginated_response(ContactSerializer(page, many=True).data)
        data = ContactSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        contact = services.create_contact(self.tenant, account=account, actor=self.actor, **data.validated_data)
        return Response(ContactSerializer(contact).data, status=status.HTTP_201_CREATED)
