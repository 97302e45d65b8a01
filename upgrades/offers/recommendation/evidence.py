"""The evidence of a recommendation: the numbers, the model and its inputs, and one plain sentence.

"You used 92% of your 100k API calls on 5 of the last 7 days; at this pace you will need about
140k next month." The sentence names the meter under most pressure (projected / limit), or the
locked feature the signal is about, and says plainly when the projection is only a run-rate.
"""

from __future__ import annotations

from typing import Any

from upgrades.offers.recommendation.needs import NEAR_DAYS, MeterNeed
from upgrades.offers.recommendation.projection import NO_USAGE, RUN_RATE


def short_number(n: int | None) -> str:
    """100000 -> '100k', 1500 -> '1.5k', 2500000 -> '2.5M', 950 -> '950'."""
    if n is None:
        return "unlimited"
    for size, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "k")):
        if n >= size:
            value = n / size
            text = f"{value:.1f}" if value < 10 else f"{round(value)}"
            return text.removesuffix(".0") + suffix
    return f"{n:,}"


def _signal_utilisation(signal_evidence: dict | None, meter_key: str) -> tuple[int, int, int] | None:
    """(threshold %, days over, days) from the signal's meter_utilisation fact for this meter."""
    for fact in (signal_evidence or {}).get("facts", []) or []:
        numbers = fact.get("numbers") if isinstance(fact, dict) else None
        if fact.get("kind") == "meter_utilisation" and isinstance(numbers, dict) and numbers.get("meter") == meter_key:
            try:
                return int(numbers["threshold"]), int(numbers["days_over"]), int(numbers["days"])
            except (KeyError, TypeError, ValueError):
                return None
    return None


def _pressure(m: MeterNeed) -> float:
    if not m.enabled:
        return float(m.projection.projected > 0) * 1e9
    if not m.limit:
        return 0.0
    return m.projection.projected / m.limit


def meter_sentence(m: MeterNeed, signal_evidence: dict | None) -> str:
    unit = m.unit or m.meter.name
    need = f"about {short_number(m.projection.projected)} {m.period_word}"
    if m.projection.model == RUN_RATE:
        days = m.projection.inputs.get("history_days")
        pace = f"with only {days} days of history, at this period's pace you will need {need}"
    else:
        pace = f"at this pace you will need {need}"
    if not m.enabled:
        return f"Your plan doesn't include {unit}; {pace}."
    if m.limit is None:
        return f"You used {short_number(m.used)} {unit} so far; {pace}."
    from_signal = _signal_utilisation(signal_evidence, m.meter.key)
    if from_signal is not None:
        threshold, over, days = from_signal
        return (
            f"You used {threshold}% of your {short_number(m.limit)} {unit} on {over} of the last {days} days; {pace}."
        )
    percent = m.used * 100 // m.limit
    if m.days_near_limit:
        return (f"You used at least {m.threshold_percent}% of your {short_number(m.limit)} {unit} on "
                f"{m.days_near_limit} of the last {NEAR_DAYS} days; {pace}.")  # fmt: skip
    return f"You have used {percent}% of your {short_number(m.limit)} {unit} so far; {pace}."


def build_evidence(
    *,
    meters: list[MeterNeed],
    locked: list[str],
    feature_names: dict[str, str],
    signal: Any | None,
    offered_label: str,
    meets_all: bool,
    unmet: list[str],
    model_inputs: dict[str, Any],
) -> dict[str, Any]:
    signal_evidence = getattr(signal, "evidence", None)
    ranked = sorted((m for m in meters if m.projection.model != NO_USAGE), key=_pressure, reverse=True)
    pressing = [m for m in ranked if _pressure(m) >= 0.8]
    if locked:
        names = ", ".join(feature_names.get(k, k) for k in locked)
        sentence = f"You tried to use {names}, which your plan doesn't include; {offered_label} includes it."
        if pressing:
            sentence += " " + meter_sentence(pressing[0], signal_evidence)
    elif ranked:
        sentence = meter_sentence(ranked[0], signal_evidence)
    else:
        sentence = f"{offered_label} adds what your plan is missing."
    if not meets_all:
        sentence += f" Even {offered_label} doesn't fully cover {', '.join(feature_names.get(k, k) for k in unmet)}."
    models = sorted({m.projection.model for m in meters})
    return {
        "sentence": sentence,
        "model": {
            "name": models[0] if len(models) == 1 else ("mixed: " + ", ".join(models) if models else NO_USAGE),
            "inputs": {
                **model_inputs,
                "per_meter": {m.meter.key: {"model": m.projection.model, **m.projection.inputs} for m in meters},
            },
        },
        "meters": [m.as_dict() for m in meters],
        "locked_features": locked,
        "meets_all_needs": meets_all,
        "unmet": unmet,
        "signal": getattr(signal, "pk", None),
        "signal_sentence": (signal_evidence or {}).get("sentence", "") if signal is not None else "",
    }
