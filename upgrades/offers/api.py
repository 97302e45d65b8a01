"""/api/v1/offers: for vendors who show offers in their own UI — list, read, accept (hands to billing), decline.

Thin: inputs are validated by the serializers (400 with field and reason), the work is the lifecycle
services' (`accept_offer`, `decline_offer`), reads go through selectors. Only offers that reached
the customer (sent onwards) are served; drafts and offers awaiting a CSM's review are staff business
and answer 404 like other tenants' ids. Service errors render in the house shape with their own
status: `illegal_transition`, `offer_expired`, `approval_needed`, `quote_stale` -> 409 (after
`quote_stale` the offer carries Stripe's new quote: show it, then accept again).
"""

from __future__ import annotations

import re

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api_base import ErrorSerializer, TenantScopedViewSet
from accounts.errors import NotFound as AccountNotFound
from accounts.models import external_id_validator
from accounts.selectors import get_account_for_tenant
from upgrades.offers import selectors
from upgrades.offers.errors import InvalidInput
from upgrades.offers.models import Offer, OfferState
from upgrades.offers.serializers import (
    AcceptInputSerializer,
    DeclineInputSerializer,
    OfferSerializer,
    present_offer,
)
from upgrades.offers.services.acceptance import accept_offer
from upgrades.offers.services.declines import decline_offer

_EXTERNAL_ID = re.compile(external_id_validator.regex.pattern)
ID_PATTERN = r"[0-9]{1,18}"


def _render(offer: Offer) -> dict:
    return OfferSerializer(present_offer(offer)).data


class OfferViewSet(TenantScopedViewSet):
    """Offers of the API key's tenant. Other tenants' ids (and unsent offers) answer 404."""

    lookup_value_regex = ID_PATTERN
    serializer_class = OfferSerializer

    def tenant_queryset(self):
        return selectors.list_offers(self.tenant, customer_visible=True)

    def _offer(self, pk: str) -> Offer:
        return selectors.get_offer_for_tenant(self.tenant, int(pk), customer_visible=True)

    @extend_schema(
        parameters=[
            OpenApiParameter("account", str, required=False, description="An account's external id."),
            OpenApiParameter("state", str, enum=OfferState.values, required=False),
            OpenApiParameter("limit", int, required=False, description="A synonym of `page_size`."),
        ],
        responses=OfferSerializer(many=True),
    )
    def list(self, request: Request) -> Response:
        params = request.query_params
        errors: dict[str, list[str]] = {}
        account = None
        raw_account = params.get("account") or None
        if raw_account is not None:
            if not _EXTERNAL_ID.fullmatch(raw_account):
                errors["account"] = ["Not a valid external id."]
            else:
                try:
                    account = get_account_for_tenant(self.tenant, raw_account)
                except AccountNotFound:
                    errors["account"] = ["No such account."]
        state = params.get("state") or None
        if state is not None and state not in OfferState.values:
            errors["state"] = [f"Unknown state; use one of {', '.join(OfferState.values)}."]
        if errors:
            raise InvalidInput("Invalid query parameters.", details=errors)
        offers = selectors.list_offers(self.tenant, account=account, state=state, customer_visible=True)
        page = self.paginate_queryset(offers)
        return self.get_paginated_response([_render(offer) for offer in page])

    @extend_schema(responses=OfferSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(_render(self._offer(pk)))

    @extend_schema(
        request=AcceptInputSerializer,
        responses={
            202: OfferSerializer,
            503: OpenApiResponse(ErrorSerializer, description="Stripe could not be reached; nothing was changed."),
        },
    )
    @action(detail=True, methods=["post"])
    def accept(self, request: Request, pk: str) -> Response:
        """Accept one option: Stripe's quote must equal the shown one (else 409 `quote_stale`, the new quote
        shown on the offer: show it, then accept again under a new `Idempotency-Key`, since a key replays
        its first answer); the payment is then with billing and the offer becomes fulfilled once it settles.
        A failed payment shows in `payment.failure`."""
        offer = self._offer(pk)
        data = AcceptInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        accept_offer(self.tenant, offer=offer, option_key=data.validated_data["option"], actor=self.actor)
        return Response(_render(self._offer(pk)), status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=DeclineInputSerializer, responses={200: OfferSerializer})
    @action(detail=True, methods=["post"])
    def decline(self, request: Request, pk: str) -> Response:
        """Decline with a reason code and the customer's own words (kept as feedback)."""
        offer = self._offer(pk)
        data = DeclineInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        decline_offer(
            self.tenant,
            offer=offer,
            reason_code=data.validated_data["reason"],
            text=data.validated_data["text"],
            actor=self.actor,
            source="api",
        )
        return Response(_render(self._offer(pk)))
