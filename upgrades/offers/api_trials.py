"""/api/v1/trials: start a trial of a higher tier or an add-on where policy allows, and follow it.

Thin: the input is validated here (every field, 400 with field and reason), the decision is
`start_trial`'s (upgrades.offers.services.trials), the answer is the progress view
(`trial_progress`, `trial_next_steps`). Service errors render in the house shape with their own
status: `trial_not_allowed` -> 400, `trial_already_used` and `no_live_settings` -> 409.
`Idempotency-Key` is honoured by the base view (accounts/idempotency.py). Other tenants' ids
answer 404.
"""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api_base import TenantScopedViewSet
from accounts.errors import NotFound as AccountNotFound
from accounts.models import external_id_validator
from accounts.selectors import get_account_for_tenant
from catalog.models import key_validator
from upgrades.offers.errors import InvalidInput, NotFound, OffersErrorCode
from upgrades.offers.models import Trial, TrialState
from upgrades.offers.services.trials import MAX_TRIAL_DAYS, start_trial
from upgrades.offers.services.trials_wins import (
    get_trial_for_tenant,
    list_trials,
    trial_next_steps,
    trial_progress,
)

_EXTERNAL_ID = re.compile(external_id_validator.regex.pattern)
_KEY = re.compile(key_validator.regex.pattern)
ID_PATTERN = r"[0-9]{1,18}"


class TrialInputSerializer(serializers.Serializer):
    account = serializers.CharField(max_length=128, help_text="The account's external id.")
    tier = serializers.CharField(
        max_length=63, required=False, help_text="The key of a published tier above the account's (or give `addon`)."
    )
    addon = serializers.CharField(
        max_length=63, required=False, help_text="The key of a published add-on the account lacks (or give `tier`)."
    )
    days = serializers.IntegerField(
        min_value=1,
        max_value=MAX_TRIAL_DAYS,
        required=False,
        help_text="How long the trial runs; by default the tenant's live offer settings say.",
    )

    def validate_account(self, value: str) -> str:
        if not _EXTERNAL_ID.fullmatch(value):
            raise serializers.ValidationError("Not a valid external id.")
        return value

    def validate_tier(self, value: str) -> str:
        if not _KEY.fullmatch(value):
            raise serializers.ValidationError("Not a valid tier key.")
        return value

    def validate_addon(self, value: str) -> str:
        if not _KEY.fullmatch(value):
            raise serializers.ValidationError("Not a valid add-on key.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("tier" in attrs) == ("addon" in attrs):
            raise serializers.ValidationError({"tier": ["Give a tier or an add-on (one of them)."]})
        return attrs


class UnlockedFeatureSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()


class TrialWinSerializer(serializers.Serializer):
    feature = serializers.CharField(help_text="The feature's key.")
    name = serializers.CharField()
    unit = serializers.CharField(allow_blank=True)
    uses = serializers.IntegerField(help_text="Events (and gate hits) using the feature during the trial.")
    quantity = serializers.IntegerField(help_text="Units of the feature's meter used during the trial (0: no meter).")
    first_used_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField()
    sentence = serializers.CharField(help_text="The win in one plain sentence.")


class NextStepOptionSerializer(serializers.Serializer):
    key = serializers.ChoiceField(choices=["upgrade", "stay", "talk_to_person"])
    label = serializers.CharField()
    offer = serializers.IntegerField(allow_null=True, help_text="The offer the trial came from, if any.")
    preselected = serializers.BooleanField(help_text="Always false: no choice is made for the customer.")


class NextStepsSerializer(serializers.Serializer):
    headline = serializers.CharField()
    body = serializers.CharField()
    data_kept = serializers.CharField()
    options = NextStepOptionSerializer(many=True)


class TrialSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    account = serializers.CharField(help_text="The account's external id.")
    target_kind = serializers.CharField(help_text="tier or addon")
    target_key = serializers.CharField()
    target_name = serializers.CharField()
    state = serializers.ChoiceField(choices=TrialState.choices)
    source = serializers.CharField(help_text="offer, csm, api or portal")
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField(help_text="The promised end: it holds even after an upgrade.")
    ended_at = serializers.DateTimeField(allow_null=True)
    converted_at = serializers.DateTimeField(allow_null=True)
    days_total = serializers.IntegerField()
    days_left = serializers.IntegerField(help_text="Whole days until the end (0 once ended).")
    unlocked_features = UnlockedFeatureSerializer(many=True, help_text="What the trial adds to the paid plan.")
    wins = TrialWinSerializer(many=True, help_text="Early wins: unlocked features used during the trial.")
    summary = serializers.CharField()
    wins_sentence = serializers.CharField()
    next_steps = NextStepsSerializer()


def _render(tenant: Any, trial: Trial) -> dict:
    trial = get_trial_for_tenant(tenant, trial.pk)
    return TrialSerializer({**trial_progress(tenant, trial), "next_steps": trial_next_steps(tenant, trial)}).data


class TrialViewSet(TenantScopedViewSet):
    """Trials of the API key's tenant. Other tenants' ids answer 404."""

    lookup_value_regex = ID_PATTERN
    serializer_class = TrialSerializer

    def tenant_queryset(self):
        return list_trials(self.tenant)

    @extend_schema(request=TrialInputSerializer, responses={201: TrialSerializer})
    def create(self, request: Request) -> Response:
        data = TrialInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        try:
            account = get_account_for_tenant(self.tenant, fields["account"])
        except AccountNotFound:
            raise InvalidInput(
                "Invalid trial.", code=OffersErrorCode.INVALID, details={"account": ["No such account."]}
            ) from None
        kind = "tier" if "tier" in fields else "addon"
        trial = start_trial(
            self.tenant,
            account=account,
            target_kind=kind,
            target_key=fields[kind],
            actor=self.actor,
            source="api",
            days=fields.get("days"),
        )
        return Response(_render(self.tenant, trial), status=status.HTTP_201_CREATED)

    @extend_schema(responses=TrialSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        try:
            trial = get_trial_for_tenant(self.tenant, int(pk))
        except NotFound:
            raise NotFound("No such trial.") from None
        return Response(_render(self.tenant, trial))
