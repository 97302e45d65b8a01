"""Validation of offer settings: value model drivers and discount variants (shapes in the OfferSettings
docstring, upgrades/offers/models.py), meter keys from the tenant's catalog, signal kinds from the rules;
and how a version reads in words (drivers, variants next to the DiscountPolicy cap)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError

from accounts.models import Tenant
from catalog.models import Meter
from catalog.money import format_money
from catalog.selectors import get_discount_policy
from upgrades.offers.errors import InvalidInput, OffersErrorCode
from upgrades.offers.models import OfferSettings
from upgrades.rules.models import SignalKind

LABEL_MAX = 200

# Each driver kind: its required fields and how each is read ("meter", "decimal", "percent", "minor").
DRIVER_FIELDS: dict[str, dict[str, str]] = {
    "hours_saved": {"meter": "meter", "hours_per_unit": "decimal", "hourly_cost": "minor"},
    "revenue_at_risk": {"amount": "minor", "probability_percent": "percent"},
    "incidents_avoided": {"per_month": "decimal", "cost_per_incident": "minor"},
}
DRIVER_LABELS = {
    "hours_saved": "Hours saved",
    "revenue_at_risk": "Revenue at risk",
    "incidents_avoided": "Incidents avoided",
}


# --- validation -----------------------------------------------------------------------------


class _Errors:
    def __init__(self) -> None:
        self.by_field: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.by_field.setdefault(field, []).append(message)

    def raise_if_any(self) -> None:
        if not self.by_field:
            return
        field, reasons = next(iter(self.by_field.items()))
        count = sum(len(v) for v in self.by_field.values())
        message = f"{field}: {reasons[0]}" if count == 1 else f"The offer settings have {count} problems."
        raise InvalidInput(message, code=OffersErrorCode.INVALID, details=self.by_field)


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _text(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _clean_drivers(tenant: Tenant, drivers: Any, errors: _Errors) -> list[dict[str, Any]]:
    if not isinstance(drivers, list):
        errors.add("value_model", "Must be a list of drivers.")
        return []
    meters = set(Meter.objects.for_tenant(tenant).values_list("key", flat=True))
    out: list[dict[str, Any]] = []
    for i, driver in enumerate(drivers):
        where = f"value_model[{i}]"
        if not isinstance(driver, dict):
            errors.add(where, "Each driver is an object with a kind.")
            continue
        kind = driver.get("kind")
        if kind not in DRIVER_FIELDS:
            errors.add(f"{where}.kind", f"Unknown driver kind {kind!r}; use one of {', '.join(DRIVER_FIELDS)}.")
            continue
        spec = DRIVER_FIELDS[kind]
        unknown = set(driver) - set(spec) - {"kind", "label"}
        for name in sorted(unknown):
            errors.add(f"{where}.{name}", f"Not a field of a {kind} driver.")
        clean: dict[str, Any] = {"kind": kind}
        for name, how in spec.items():
            value = driver.get(name)
            field = f"{where}.{name}"
            if value is None or value == "":
                errors.add(field, "Required.")
                continue
            if how == "meter":
                if not isinstance(value, str) or value not in meters:
                    errors.add(field, f"No meter {value!r} in this tenant's catalog.")
                    continue
                clean[name] = value
                continue
            if how == "minor":
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    errors.add(field, "A whole amount in minor units (cents), 0 or more.")
                    continue
                clean[name] = value
                continue
            number = _decimal(value)
            if number is None or number < 0:
                errors.add(field, 'A number (as text, e.g. "0.05"), 0 or more.')
                continue
            if how == "percent" and number > 100:
                errors.add(field, "A percentage from 0 to 100.")
                continue
            clean[name] = _text(number)
        label = driver.get("label", "")
        if not isinstance(label, str) or len(label) > LABEL_MAX:
            errors.add(f"{where}.label", f"Text of at most {LABEL_MAX} characters.")
        else:
            clean["label"] = label.strip() or DRIVER_LABELS[kind]
        out.append(clean)
    return out


def _clean_variants(variants: Any, errors: _Errors) -> list[dict[str, Any]]:
    if not isinstance(variants, list):
        errors.add("discount_variants", "Must be a list of variants.")
        return []
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, variant in enumerate(variants):
        where = f"discount_variants[{i}]"
        if not isinstance(variant, dict):
            errors.add(where, "Each variant is an object with a key and a percent.")
            continue
        for name in sorted(set(variant) - {"key", "percent", "explanation"}):
            errors.add(f"{where}.{name}", "Not a field of a discount variant.")
        key = variant.get("key")
        if (
            not isinstance(key, str)
            or not key.strip()
            or len(key) > 40
            or not key.replace("-", "").replace("_", "").isalnum()
        ):
            errors.add(f"{where}.key", "A short key of letters, digits, - or _ (at most 40).")
            continue
        if key in seen:
            errors.add(f"{where}.key", f"Key {key} is used twice.")
            continue
        seen.add(key)
        number = _decimal(variant.get("percent"))
        if number is None or not (0 <= number <= 100):
            errors.add(f"{where}.percent", "A percentage from 0 to 100.")
            continue
        if number != number.quantize(Decimal("0.01")):
            errors.add(f"{where}.percent", "At most two decimal places.")
            continue
        explanation = variant.get("explanation", "")
        if not isinstance(explanation, str) or len(explanation) > 500:
            errors.add(f"{where}.explanation", "Text of at most 500 characters.")
            continue
        out.append({"key": key, "percent": _text(number), "explanation": explanation.strip()})
    return out


def _clean_signal_kinds(kinds: Any, errors: _Errors) -> list[str]:
    if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
        errors.add("signal_kinds", "Must be a list of signal kinds.")
        return []
    bad = [k for k in kinds if k not in SignalKind.values]
    if bad:
        errors.add("signal_kinds", f"Unknown signal kind(s): {', '.join(bad)}; use {', '.join(SignalKind.values)}.")
    return list(dict.fromkeys(k for k in kinds if k in SignalKind.values))


def validate_settings(tenant: Tenant, obj: OfferSettings) -> None:
    """Canonicalise obj's JSON fields in place, or raise InvalidInput with every problem and where it is."""
    errors = _Errors()
    obj.signal_kinds = _clean_signal_kinds(obj.signal_kinds, errors)
    obj.value_model = _clean_drivers(tenant, obj.value_model, errors)
    obj.discount_variants = _clean_variants(obj.discount_variants, errors)
    if not isinstance(obj.name, str) or not obj.name.strip():
        errors.add("name", "Required.")
    try:
        obj.full_clean(exclude=["tenant", "value_model", "discount_variants", "signal_kinds"], validate_unique=False)
    except ValidationError as exc:
        for field, reasons in exc.message_dict.items():
            for reason in reasons:
                errors.add(field, reason)
    errors.raise_if_any()


@dataclass(frozen=True)
class VariantView:
    key: str
    percent: Decimal
    explanation: str
    over_cap: bool
    cap_percent: Decimal | None

    @property
    def flag(self) -> str:
        return "needs approval per offer" if self.over_cap else ""


def describe_variants(tenant: Tenant, obj: OfferSettings) -> list[VariantView]:
    """Each variant next to the DiscountPolicy cap: over the cap is allowed, but each offer then waits for approval."""
    policy = get_discount_policy(tenant)
    cap = Decimal(policy.cap_percent) if policy is not None else None
    out = []
    for v in obj.discount_variants or []:
        percent = _decimal(v.get("percent")) or Decimal(0)
        out.append(
            VariantView(
                key=str(v.get("key", "")),
                percent=percent,
                explanation=str(v.get("explanation", "")),
                over_cap=cap is not None and percent > cap,
                cap_percent=cap,
            )
        )
    return out


def _money(value: Any, currency: str) -> str:
    return format_money(value, currency) if isinstance(value, int) and not isinstance(value, bool) else str(value)


def describe_driver(driver: dict[str, Any], currency: str = "USD") -> str:
    """A driver in words, e.g. 'Hours saved: 0.05 h per unit of api_calls at 60.00/h'."""
    kind = driver.get("kind")
    label = driver.get("label") or DRIVER_LABELS.get(str(kind), str(kind))
    if kind == "hours_saved":
        cost = _money(driver.get("hourly_cost", 0), currency)
        return f"{label}: {driver.get('hours_per_unit')} h per unit of {driver.get('meter')}, at {cost} an hour"
    if kind == "revenue_at_risk":
        amount = _money(driver.get("amount", 0), currency)
        return f"{label}: {driver.get('probability_percent')} % chance of losing {amount}"
    if kind == "incidents_avoided":
        cost = _money(driver.get("cost_per_incident", 0), currency)
        return f"{label}: {driver.get('per_month')} incidents a month avoided, {cost} each"
    return str(label)
