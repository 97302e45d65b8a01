"""Stand-ins used ONLY until the real pieces are committed by their owners (then the real ones run):
`upgrades.offers.pricing.price_offer` (helper "price") and `upgrades.rules.services.mark_signal_acted_on`
(helper "rules"). Each fake is installed only when the real name can't be imported."""

from __future__ import annotations

import importlib
import types
from dataclasses import dataclass, field

from upgrades.rules.models import SignalState


@dataclass(frozen=True)
class FakePricing:
    options: list = field(default_factory=list)
    recommended_option: str = ""
    anchor: dict | None = None
    discount: dict | None = None
    discount_approval_needed: bool = False
    quote: dict = field(default_factory=dict)
    currency: str = "USD"
    roi: dict | None = None


def fake_price_offer(tenant, *, license, recommendation, settings, variant="", now=None):
    c = recommendation.candidate
    key = f"{c.key}-{license.interval}"
    option = {"key": key, "interval": license.interval, "term_years": 1, "tier": c.tier.key,
              "addons": [a.key for a in c.addons], "seats": license.seats,
              "price_ids": [c.tier_price.pk, *(p.pk for p in c.addon_prices)], "list_amount": c.monthly_amount,
              "amount": c.monthly_amount, "monthly_equivalent": c.monthly_amount, "saving": None,
              "discount": None}  # fmt: skip
    return FakePricing(options=[option], recommended_option=key, quote={"amount_due_now": 0, "option": key})


def fake_mark_signal_acted_on(tenant, *, signal, reference):
    type(signal).objects.for_tenant(tenant).filter(pk=signal.pk).update(state=SignalState.ACTED_ON)


def install_fakes(monkeypatch) -> None:
    try:
        importlib.import_module("upgrades.offers.pricing").price_offer  # noqa: B018
    except (ImportError, AttributeError):
        module = types.ModuleType("upgrades.offers.pricing")
        module.price_offer = fake_price_offer  # type: ignore[attr-defined]
        monkeypatch.setitem(__import__("sys").modules, "upgrades.offers.pricing", module)
    from upgrades.rules import services as rules_services

    if not hasattr(rules_services, "mark_signal_acted_on"):
        monkeypatch.setattr(rules_services, "mark_signal_acted_on", fake_mark_signal_acted_on, raising=False)
