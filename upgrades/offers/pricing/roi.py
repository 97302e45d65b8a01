"""The value of an option in the account's own numbers: the tenant's live value model, conservative by default.

Each driver of `OfferSettings.value_model` (shapes in its docstring) is evaluated with the account's
numbers and the settings' assumptions, and every input can be changed by the customer:
- hours_saved: units a month x hours per unit x loaded hourly cost. Units default to the lower
  bound of what the evidence measured: the smaller of what the account used so far this period and
  what it is projected to use next period (never scaled up); a meter with no measured use counts 0.
- revenue_at_risk: the amount at risk in a month x the chance of losing it.
- incidents_avoided: incidents a month x the cost of one.
Arithmetic is exact (Fraction) and rounded once per driver (catalog.pricing.round_half_up); money is
integer minor units. Inputs are validated (numbers, bounds, unknown keys refused, each with its field
and reason) and nothing is computed from an input that failed.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from accounts.models import CustomerAccount, Tenant
from catalog.money import format_money
from catalog.pricing import basis_to_percent, round_half_up
from upgrades.offers.errors import InvalidInput, OffersErrorCode
from upgrades.offers.pricing.similar import similar_outcomes

DAYS_PER_MONTH = Fraction(365, 12)
# Each driver kind: its inputs, how each is read ("int" whole number, "decimal"), and its bounds.
INPUTS: dict[str, dict[str, tuple[str, int, int]]] = {
    "hours_saved": {
        "units_per_month": ("int", 0, 10**12),
        "hours_per_unit": ("decimal", 0, 1_000),
        "hourly_cost": ("int", 0, 10**9),
    },
    "revenue_at_risk": {"amount": ("int", 0, 10**12), "probability_percent": ("decimal", 0, 100)},
    "incidents_avoided": {"per_month": ("decimal", 0, 10**6), "cost_per_incident": ("int", 0, 10**12)},
}
LABELS = {"hours_saved": "Hours saved", "revenue_at_risk": "Revenue at risk", "incidents_avoided": "Incidents avoided"}
MAX_TEXT = 32


def driver_keys(value_model: list[dict[str, Any]]) -> list[str]:
    """Each driver's key for overrides: its kind, then kind_2, kind_3 for later drivers of the same kind."""
    seen: dict[str, int] = {}
    keys = []
    for driver in value_model:
        kind = str(driver.get("kind"))
        seen[kind] = seen.get(kind, 0) + 1
        keys.append(kind if seen[kind] == 1 else f"{kind}_{seen[kind]}")
    return keys


def _number(value: Any, how: str, low: int, high: int) -> tuple[Decimal | int | None, str]:
    """The input as a number within bounds, or (None, the reason)."""
    if isinstance(value, bool) or value is None:
        return None, "A number."
    if isinstance(value, float):
        if not math.isfinite(value):
            return None, "A number."
        value = repr(value)
    if isinstance(value, str):
        if len(value.strip()) > MAX_TEXT:
            return None, "A number of at most 32 characters."
        value = value.strip()
    try:
        number = Decimal(value) if not isinstance(value, int) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return None, "A number."
    if not number.is_finite():
        return None, "A number."
    if how == "int" and number != number.to_integral_value():
        return None, "A whole number (amounts are in minor units, e.g. cents)."
    if not low <= number <= high:
        return None, f"From {low} to {high:,}."
    return (int(number) if how == "int" else number), ""


def validate_inputs(value_model: list[dict[str, Any]], inputs: Any) -> dict[str, dict[str, Decimal | int]]:
    """The customer's overrides, checked; InvalidInput with every bad field and why."""
    if inputs is None:
        return {}
    if not isinstance(inputs, dict):
        raise InvalidInput(
            "inputs: an object of drivers.", code=OffersErrorCode.INVALID, details={"inputs": ["An object of drivers."]}
        )
    keys = dict(zip(driver_keys(value_model), (str(d.get("kind")) for d in value_model), strict=True))
    errors: dict[str, list[str]] = {}
    clean: dict[str, dict[str, Decimal | int]] = {}
    for key, fields in inputs.items():
        where = f"inputs.{key}"
        if key not in keys:
            known = ", ".join(keys) or "none"
            errors.setdefault(where, []).append(f"No driver {key!r} in this value model (drivers: {known}).")
            continue
        if not isinstance(fields, dict):
            errors.setdefault(where, []).append("An object of inputs.")
            continue
        spec = INPUTS[keys[key]]
        for name, value in fields.items():
            field = f"{where}.{name}"
            if name not in spec:
                errors.setdefault(field, []).append(f"Not an input of this driver (inputs: {', '.join(spec)}).")
                continue
            number, reason = _number(value, *spec[name])
            if number is None:
                errors.setdefault(field, []).append(reason)
                continue
            clean.setdefault(key, {})[name] = number
    if errors:
        field, reasons = next(iter(errors.items()))
        message = f"{field}: {reasons[0]}" if len(errors) == 1 else f"{len(errors)} inputs are not valid."
        raise InvalidInput(message, code=OffersErrorCode.INVALID, details=errors)
    return clean


def _meter_units(evidence: dict[str, Any], meter: str) -> tuple[int, str]:
    """The conservative units a month for `meter` and the sentence that says where they come from."""
    for row in (evidence or {}).get("meters") or []:
        if not isinstance(row, dict) or row.get("meter") != meter:
            continue
        # `used` is this meter window so far and `projected` the next period: the smaller is the lower bound.
        # (`window_days` in the evidence is the window of `days_near_limit`, not of `used`: never scaled.)
        used = int(row.get("used") or 0)
        projected = row.get("projected")
        unit = row.get("unit") or meter
        if isinstance(projected, int) and not isinstance(projected, bool) and projected < used:
            return projected, f"{unit}: the {projected:,} projected for the next period (lower than the {used:,} used)."
        return used, f"{unit}: the {used:,} used so far this period, not the projected growth."
    return 0, f"No use of {meter} was measured for this account, so it counts as 0 until you enter your own number."


def _text(number: Decimal | int) -> str:
    return f"{Decimal(number).normalize():f}" if isinstance(number, Decimal) else str(number)


def _evaluate(
    driver: dict[str, Any], key: str, *, evidence: dict[str, Any], overrides: dict[str, Decimal | int], currency: str
) -> tuple[dict[str, Any], list[str]]:
    kind = str(driver.get("kind"))
    label = str(driver.get("label") or LABELS.get(kind, kind))
    assumptions: list[str] = []
    money = lambda amount: format_money(amount, currency)  # noqa: E731

    def value_of(name: str, default: Any) -> Decimal | int:
        if name in overrides:
            return overrides[name]
        how = INPUTS[kind][name][0]
        return int(default or 0) if how == "int" else Decimal(str(default or "0"))

    if kind == "hours_saved":
        units_default, where = _meter_units(evidence, str(driver.get("meter")))
        if "units_per_month" not in overrides:
            assumptions.append(f"{label}: {where}")
        inputs = {
            "units_per_month": value_of("units_per_month", units_default),
            "hours_per_unit": value_of("hours_per_unit", driver.get("hours_per_unit")),
            "hourly_cost": value_of("hourly_cost", driver.get("hourly_cost")),
        }
        exact = (
            Fraction(inputs["units_per_month"]) * Fraction(inputs["hours_per_unit"]) * Fraction(inputs["hourly_cost"])
        )
        hours = Fraction(inputs["units_per_month"]) * Fraction(inputs["hours_per_unit"])
        value = round_half_up(exact.numerator, exact.denominator)
        formula = (
            f"{inputs['units_per_month']:,} units a month × {_text(inputs['hours_per_unit'])} hours each = "
            f"{_text(Decimal(hours.numerator) / Decimal(hours.denominator))} hours, × {money(inputs['hourly_cost'])} "
            f"an hour = {money(value)} a month"
        )
        inputs_out: dict[str, Any] = {**inputs, "meter": driver.get("meter")}
    elif kind == "revenue_at_risk":
        inputs = {
            "amount": value_of("amount", driver.get("amount")),
            "probability_percent": value_of("probability_percent", driver.get("probability_percent")),
        }
        exact = Fraction(inputs["amount"]) * Fraction(inputs["probability_percent"]) / 100
        value = round_half_up(exact.numerator, exact.denominator)
        formula = (
            f"{money(inputs['amount'])} at risk a month × {_text(inputs['probability_percent'])} % chance of losing it "
            f"= {money(value)} a month"
        )
        assumptions.append(f"{label}: the amount at risk is for one month.")
        inputs_out = dict(inputs)
    elif kind == "incidents_avoided":
        inputs = {
            "per_month": value_of("per_month", driver.get("per_month")),
            "cost_per_incident": value_of("cost_per_incident", driver.get("cost_per_incident")),
        }
        exact = Fraction(inputs["per_month"]) * Fraction(inputs["cost_per_incident"])
        value = round_half_up(exact.numerator, exact.denominator)
        formula = (
            f"{_text(inputs['per_month'])} incidents a month avoided × {money(inputs['cost_per_incident'])} each "
            f"= {money(value)} a month"
        )
        inputs_out = dict(inputs)
    else:  # not a kind the settings validation lets through; counted as nothing, and said so
        return {"key": key, "kind": kind, "label": label, "value": 0, "inputs": {}, "formula": "Not evaluated."}, [
            f"{label}: an unknown kind of driver, counted as 0."
        ]
    return (
        {
            "key": key,
            "kind": kind,
            "label": label,
            "value": value,
            "inputs": {name: _text(v) if isinstance(v, Decimal) else v for name, v in inputs_out.items()},
            "overridden": sorted(overrides),
            "formula": formula,
        },
        assumptions,
    )


def _current_monthly(tenant: Tenant, account: CustomerAccount) -> int:
    from billing.selectors import get_license_for_account

    license = get_license_for_account(tenant, account)
    return license.mrr if license is not None else 0


def compute_roi(
    tenant: Tenant,
    *,
    account: CustomerAccount,
    settings: Any,
    evidence: dict[str, Any],
    option: dict[str, Any],
    inputs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The option's value a month against what it adds to the bill, with every driver's formula and assumption."""
    value_model = [d for d in (settings.value_model or []) if isinstance(d, dict)]
    overrides = validate_inputs(value_model, inputs)
    currency = str(option.get("currency") or "USD")
    drivers, assumptions = [], []
    for driver, key in zip(value_model, driver_keys(value_model), strict=True):
        row, said = _evaluate(driver, key, evidence=evidence, overrides=overrides.get(key, {}), currency=currency)
        drivers.append(row)
        assumptions.extend(said)
    monthly_value = sum(d["value"] for d in drivers)
    if "monthly_change" in option:
        increase = int(option["monthly_change"])
    else:
        increase = int(option.get("monthly_equivalent") or 0) - _current_monthly(tenant, account)
    if increase <= 0:
        payback_days: int | None = 0
    elif monthly_value <= 0:
        payback_days = None
    else:
        days = Fraction(increase) * DAYS_PER_MONTH / monthly_value
        payback_days = math.ceil(days)
    roi_ratio = str(basis_to_percent(round_half_up(monthly_value * 100, increase))) if increase > 0 else None
    assumptions.append(
        "Value is counted a month at a time, at the lower bound of your own numbers; change any input to use yours."
    )
    assumptions.append(
        "Payback: the days of value it takes to cover one month's increase "
        "(increase ÷ value a month × 365/12 days, rounded up)."
    )
    return {
        "drivers": drivers,
        "monthly_value": monthly_value,
        "monthly_cost_increase": increase,
        "payback_days": payback_days,
        "roi_ratio": roi_ratio,
        "currency": currency,
        "assumptions": assumptions,
        "inputs": {d["key"]: d["inputs"] for d in drivers},
        "similar": similar_outcomes(tenant, account=account, settings=settings, evidence=evidence, option=option),
    }
