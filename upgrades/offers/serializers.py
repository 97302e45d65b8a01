"""The offer's house shape on the API (DESIGN.md "Contracts"), and the inputs of accept and decline.

`present_offer` turns an Offer (its JSON snapshots) into exactly the documented shape: every key
present, every type as the schema says, so a snapshot written by an older engine still answers
within the schema. Money is integer minor units; percentages are decimal strings ("16.67").
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from billing.models import PlanChangeState
from upgrades.offers.models import DeclineReason, FeedbackKind, Offer, OfferState, OfferTargetKind

# --- output -----------------------------------------------------------------------------------


class OfferQuoteLineSerializer(serializers.Serializer):
    description = serializers.CharField()
    amount = serializers.IntegerField(help_text="Minor units; credits are negative.")
    kind = serializers.CharField(allow_blank=True, help_text="credit, charge, discount or next_period.")
    period_start = serializers.DateTimeField(allow_null=True)
    period_end = serializers.DateTimeField(allow_null=True)


class OfferQuoteSerializer(serializers.Serializer):
    lines = OfferQuoteLineSerializer(many=True, help_text="Every line: credit for unused time, charges, discounts.")
    amount_due_now = serializers.IntegerField(help_text="Minor units charged today when the option is accepted.")
    next_renewal_amount = serializers.IntegerField(help_text="Minor units billed at the next renewal.")
    next_renewal_at = serializers.DateTimeField(allow_null=True)
    currency = serializers.CharField()
    source = serializers.ChoiceField(
        choices=["estimate", "stripe"], help_text="`stripe`: Stripe's own preview; `estimate`: our proration."
    )
    quoted_at = serializers.DateTimeField(allow_null=True)
    option = serializers.CharField(allow_blank=True, help_text="The option this quote is for.")


class DiscountSerializer(serializers.Serializer):
    percent = serializers.CharField(help_text='Decimal string, e.g. "10" or "12.5".')
    amount = serializers.IntegerField(help_text="Minor units taken off per interval.")
    explanation = serializers.CharField(allow_blank=True)
    within_policy = serializers.BooleanField()
    variant = serializers.CharField(allow_blank=True)


class SavingSerializer(serializers.Serializer):
    amount = serializers.IntegerField(help_text="Minor units saved per year against paying monthly.")
    percent = serializers.CharField(help_text="Decimal string.")
    versus = serializers.CharField()


class OptionSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField(allow_blank=True)
    interval = serializers.ChoiceField(choices=["month", "year"])
    term_years = serializers.IntegerField()
    tier = serializers.CharField(allow_blank=True)
    tier_name = serializers.CharField(allow_blank=True)
    addons = serializers.ListField(child=serializers.CharField())
    seats = serializers.IntegerField()
    list_amount = serializers.IntegerField(help_text="Minor units per interval before any discount.")
    amount = serializers.IntegerField(help_text="Minor units per interval: what is charged.")
    monthly_equivalent = serializers.IntegerField()
    saving = SavingSerializer(allow_null=True)
    discount = DiscountSerializer(allow_null=True)
    changes = serializers.DictField(help_text='What changes: {"gained": [features], "lost": [...], "limits": [...]}.')


class OfferEvidenceSerializer(serializers.Serializer):
    sentence = serializers.CharField(allow_blank=True)
    model = serializers.DictField(help_text="The projection model: its name and inputs.")
    meters = serializers.ListField(child=serializers.DictField(), help_text="The numbers behind the sentence.")
    signal = serializers.IntegerField(allow_null=True)


class PaymentFailureSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField(allow_blank=True)


class PaymentSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=PlanChangeState.choices)
    failure = PaymentFailureSerializer(allow_null=True, help_text="Why the payment failed; null unless it did.")
    retry_possible = serializers.BooleanField(
        help_text="The payment can be retried (the same invoice, or a new quote when Stripe discarded the change)."
    )


class DeclineSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(choices=DeclineReason.choices)
    text = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()


class OfferSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    account = serializers.CharField(help_text="The account's external id.")
    state = serializers.ChoiceField(choices=OfferState.choices)
    target_kind = serializers.ChoiceField(choices=OfferTargetKind.choices)
    target_key = serializers.CharField()
    evidence = OfferEvidenceSerializer()
    options = OptionSerializer(many=True)
    recommended_option = serializers.CharField(allow_blank=True)
    anchor = serializers.DictField(allow_null=True, help_text="The premium option shown beside, for comparison.")
    discount = DiscountSerializer(allow_null=True)
    quote = OfferQuoteSerializer(allow_null=True)
    roi = serializers.DictField(allow_null=True, help_text="The value estimate from the account's own numbers.")
    expires_at = serializers.DateTimeField()
    accepted_option = serializers.CharField(allow_blank=True)
    payment = PaymentSerializer(allow_null=True, help_text="Once accepted: the payment's state and any failure.")
    amount_charged = serializers.IntegerField(
        allow_null=True, help_text="Minor units on the settled invoice; null until fulfilled."
    )
    decline = DeclineSerializer(allow_null=True, help_text="Once declined: the customer's reason and words.")
    created_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)
    viewed_at = serializers.DateTimeField(allow_null=True)
    accepted_at = serializers.DateTimeField(allow_null=True)
    fulfilled_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _discount(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        return None
    return {
        "percent": _str(raw.get("percent", "0")),
        "amount": _int(raw.get("amount")),
        "explanation": _str(raw.get("explanation")),
        "within_policy": bool(raw.get("within_policy", True)),
        "variant": _str(raw.get("variant")),
    }


def _option(raw: dict[str, Any]) -> dict[str, Any]:
    saving = raw.get("saving")
    return {
        "key": _str(raw.get("key")),
        "label": _str(raw.get("label")),
        "interval": raw.get("interval") if raw.get("interval") in ("month", "year") else "month",
        "term_years": _int(raw.get("term_years"), 1),
        "tier": _str(raw.get("tier")),
        "tier_name": _str(raw.get("tier_name")),
        "addons": [_str(a) for a in raw.get("addons") or []],
        "seats": _int(raw.get("seats"), 1),
        "list_amount": _int(raw.get("list_amount", raw.get("amount"))),
        "amount": _int(raw.get("amount")),
        "monthly_equivalent": _int(raw.get("monthly_equivalent")),
        "saving": {
            "amount": _int(saving.get("amount")),
            "percent": _str(saving.get("percent", "0")),
            "versus": _str(saving.get("versus") or "monthly"),
        }
        if isinstance(saving, dict)
        else None,
        "discount": _discount(raw.get("discount")),
        "changes": _dict(raw.get("changes")),
    }


def _quote(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        return None
    return {
        "lines": [
            {
                "description": _str(line.get("description")),
                "amount": _int(line.get("amount")),
                "kind": _str(line.get("kind")),
                "period_start": line.get("period_start") or None,
                "period_end": line.get("period_end") or None,
            }
            for line in raw.get("lines") or []
            if isinstance(line, dict)
        ],
        "amount_due_now": _int(raw.get("amount_due_now")),
        "next_renewal_amount": _int(raw.get("next_renewal_amount")),
        "next_renewal_at": raw.get("next_renewal_at") or None,
        "currency": _str(raw.get("currency")),
        "source": "stripe" if raw.get("source") == "stripe" else "estimate",
        "quoted_at": raw.get("quoted_at") or None,
        "option": _str(raw.get("option")),
    }


def _evidence(raw: Any) -> dict[str, Any]:
    raw = _dict(raw)
    signal = raw.get("signal")
    return {
        "sentence": _str(raw.get("sentence")),
        "model": _dict(raw.get("model")),
        "meters": [m for m in raw.get("meters") or [] if isinstance(m, dict)],
        "signal": signal if isinstance(signal, int) and not isinstance(signal, bool) else None,
    }


def _payment(offer: Offer) -> dict[str, Any] | None:
    pc = offer.plan_change
    if pc is None or offer.state not in (OfferState.ACCEPTED, OfferState.FULFILLED):
        return None
    failed = pc.state in (PlanChangeState.FAILED, PlanChangeState.CANCELED)
    return {
        "state": pc.state,
        "failure": {"code": pc.failure_code or pc.state, "message": pc.failure_message} if failed else None,
        # After a failure billing gave up on, the retry is quoted afresh: a new quote waits to be confirmed.
        "retry_possible": offer.state == OfferState.ACCEPTED and (failed or pc.state == PlanChangeState.QUOTED),
    }


def _decline(offer: Offer) -> dict[str, Any] | None:
    if offer.state != OfferState.DECLINED:
        return None
    declines = getattr(offer, "declines", None)
    if declines is None:  # not read through the selector
        declines = list(offer.feedback.filter(kind=FeedbackKind.DECLINE).order_by("created_at", "id")[:1])
    if not declines:
        return None
    feedback = declines[0]
    return {"reason": feedback.reason_code, "text": feedback.text, "created_at": feedback.created_at}


def present_offer(offer: Offer) -> dict[str, Any]:
    """The API's picture of one offer (select_related account and plan_change)."""
    return {
        "id": offer.pk,
        "account": offer.account.external_id,
        "state": offer.state,
        "target_kind": offer.target_kind,
        "target_key": offer.target_key,
        "evidence": _evidence(offer.evidence),
        "options": [_option(o) for o in offer.options or [] if isinstance(o, dict)],
        "recommended_option": offer.recommended_option,
        "anchor": offer.anchor if isinstance(offer.anchor, dict) else None,
        "discount": _discount(offer.discount),
        "quote": _quote(offer.quote),
        "roi": offer.roi if isinstance(offer.roi, dict) else None,
        "expires_at": offer.expires_at,
        "accepted_option": offer.accepted_option,
        "payment": _payment(offer),
        "amount_charged": offer.amount_charged if offer.state == OfferState.FULFILLED else None,
        "decline": _decline(offer),
        "created_at": offer.created_at,
        "sent_at": offer.sent_at,
        "viewed_at": offer.viewed_at,
        "accepted_at": offer.accepted_at,
        "fulfilled_at": offer.fulfilled_at,
        "closed_at": offer.closed_at,
    }


# --- input ------------------------------------------------------------------------------------


def _refuse_unstorable(value: str) -> str:
    try:
        value.encode()
    except UnicodeEncodeError:
        raise serializers.ValidationError("May not contain unpaired surrogates.") from None
    return value


class AcceptInputSerializer(serializers.Serializer):
    option = serializers.CharField(max_length=40, help_text="The key of one of the offer's options.")

    def validate_option(self, value: str) -> str:
        return _refuse_unstorable(value)


class DeclineInputSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(choices=DeclineReason.choices)
    text = serializers.CharField(
        max_length=4000, required=False, allow_blank=True, default="", help_text="The customer's own words."
    )

    def validate_text(self, value: str) -> str:
        return _refuse_unstorable(value)
