"""/api/v1/accounts/{external_id}/prompts and /api/v1/prompts/{id}/events: in-app prompts for the vendor's product.

Thin: parse and validate (400 with field and reason), call messaging.services.prompts, render.
Another tenant's account or prompt ids answer 404 like missing ones. POST honours Idempotency-Key
(TenantScopedViewSet).
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api_base import TenantScopedViewSet
from accounts.models import external_id_validator
from messaging import selectors
from messaging.errors import InvalidInput, NotFound
from messaging.models import Message
from messaging.models.templates import key_validator
from messaging.services.prompts import PROMPT_EVENTS, due_prompts_by_external_id, record_prompt_event

_EXTERNAL_ID = re.compile(external_id_validator.regex.pattern)
_PLACEMENT = re.compile(key_validator.regex.pattern)


class PromptSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    template = serializers.CharField(help_text="The template key.")
    variant = serializers.CharField()
    placement = serializers.CharField()
    contact = serializers.EmailField(help_text="The contact the prompt is for.")
    title = serializers.CharField()
    body = serializers.CharField()
    cta_label = serializers.CharField(allow_blank=True)
    cta_url = serializers.CharField(allow_blank=True)
    state = serializers.ChoiceField(choices=["queued", "sent"], help_text="sent: already shown once.")
    created_at = serializers.DateTimeField()


class PromptListSerializer(serializers.Serializer):
    account = serializers.CharField(help_text="The account's external id.")
    prompts = PromptSerializer(many=True)


class PromptEventInSerializer(serializers.Serializer):
    event = serializers.ChoiceField(choices=list(PROMPT_EVENTS))


class PromptEventOutSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The prompt.")
    event = serializers.ChoiceField(choices=list(PROMPT_EVENTS))
    state = serializers.ChoiceField(choices=["sent", "dismissed"])
    recorded_at = serializers.DateTimeField()


def present_prompt(prompt: Message) -> dict:
    rendered = prompt.rendered or {}
    return {
        "id": prompt.pk,
        "template": prompt.template_key,
        "variant": prompt.variant,
        "placement": prompt.placement,
        "contact": prompt.contact.email,
        "title": rendered.get("title", ""),
        "body": rendered.get("body", ""),
        "cta_label": rendered.get("cta_label", ""),
        "cta_url": rendered.get("cta_url", ""),
        "state": prompt.state,
        "created_at": prompt.created_at,
    }


class AccountPromptsViewSet(TenantScopedViewSet):
    """The in-app prompts due now for an account (and optionally one of its contacts)."""

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "placement", OpenApiTypes.STR, description="Where the product shows it, e.g. settings_sso."
            ),
            OpenApiParameter("contact", OpenApiTypes.EMAIL, description="Only prompts for this contact (their email)."),
        ],
        responses={200: PromptListSerializer},
    )
    def retrieve(self, request: Request, external_id: str) -> Response:
        if not _EXTERNAL_ID.fullmatch(external_id):
            raise NotFound(f"No account {external_id!r}.")
        errors: dict[str, list[str]] = {}
        placement = request.query_params.get("placement") or None
        if placement is not None and not _PLACEMENT.fullmatch(placement):
            errors["placement"] = ["Use 1–63 lower-case letters, digits, _ or -."]
        email = request.query_params.get("contact") or None
        if email is not None:
            try:
                validate_email(email)
            except ValidationError:
                errors["contact"] = ["Enter a valid email address."]
        if errors:
            raise InvalidInput("Invalid query.", details=errors)
        account, prompts = due_prompts_by_external_id(
            self.tenant, external_id=external_id, contact_email=email, placement=placement
        )
        return Response({"account": account, "prompts": [present_prompt(p) for p in prompts]})


class PromptEventsViewSet(TenantScopedViewSet):
    """What the person did with a prompt: shown, dismissed or clicked. The first 'shown' counts against the cap."""

    @extend_schema(request=PromptEventInSerializer, responses={200: PromptEventOutSerializer})
    def create(self, request: Request, prompt_id: str) -> Response:
        prompt = selectors.get_prompt_for_tenant(self.tenant, prompt_id)
        data = PromptEventInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        prompt, event = record_prompt_event(self.tenant, prompt=prompt, event=data.validated_data["event"])
        return Response(
            {
                "id": prompt.pk,
                "event": data.validated_data["event"],
                "state": prompt.state,
                "recorded_at": event.created_at,
            }  # fmt: skip
        )
