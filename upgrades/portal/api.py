"""/api/v1/portal-sessions: the vendor's backend opens a short-lived, single-use portal link for an account.

Thin: input validated here (400 with field and reason), the link is `tokens.create_portal_session`'s.
`Idempotency-Key` is honoured by the base view (accounts/idempotency.py). Another tenant's account 404s.
"""

from __future__ import annotations

import re

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api_base import TenantScopedViewSet
from accounts.errors import InvalidInput
from accounts.models import Contact, external_id_validator
from accounts.selectors import get_account_for_tenant
from upgrades.portal import tokens
from upgrades.portal.models import PortalSession

_EXTERNAL_ID = re.compile(external_id_validator.regex.pattern)


class PortalSessionInputSerializer(serializers.Serializer):
    account = serializers.CharField(max_length=128, help_text="The account's external id.")
    contact = serializers.EmailField(
        required=False, help_text="The email of one of the account's contacts: the session is bound to them too."
    )
    return_url = serializers.CharField(
        max_length=2000, help_text="Where 'back to the app' leads: an http(s) URL on an allowed origin."
    )

    def validate_account(self, value: str) -> str:
        if not _EXTERNAL_ID.fullmatch(value):
            raise serializers.ValidationError("Not a valid external id.")
        return value


class PortalSessionSerializer(serializers.Serializer):
    url = serializers.URLField(help_text="Single use; open it within the hour.")
    expires_at = serializers.DateTimeField(help_text="The link must be opened before this.")


class PortalSessionViewSet(TenantScopedViewSet):
    """Portal sessions of the API key's tenant (write scope)."""

    serializer_class = PortalSessionSerializer

    def tenant_queryset(self):
        return PortalSession.objects.for_tenant(self.tenant)

    @extend_schema(request=PortalSessionInputSerializer, responses={201: PortalSessionSerializer})
    def create(self, request: Request) -> Response:
        data = PortalSessionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        tokens.check_return_url(self.tenant, fields["return_url"])
        account = get_account_for_tenant(self.tenant, fields["account"])
        contact = None
        if fields.get("contact"):
            contact = (
                Contact.objects.for_tenant(self.tenant)
                .filter(account=account, email__iexact=fields["contact"])
                .order_by("pk")
                .first()
            )
            if contact is None:
                raise InvalidInput("Invalid portal session.", details={"contact": ["Not a contact of this account."]})
        link, url = tokens.create_portal_session(
            self.tenant, account=account, contact=contact, return_url=fields["return_url"], actor=self.actor
        )
        body = PortalSessionSerializer({"url": url, "expires_at": link.expires_at}).data
        return Response(body, status=status.HTTP_201_CREATED)
