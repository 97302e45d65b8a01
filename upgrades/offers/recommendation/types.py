"""The engine's value types: plain, frozen, JSON-friendly where they leave the engine.

`Ent` is what a set of grants allows for one feature; `Ents` maps feature key -> `Ent` for every
feature of the product, so two holdings compare feature by feature (`changes_between`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from catalog.models import AddOn, Bundle, Price, Tier


@dataclass(frozen=True)
class Ent:
    enabled: bool
    limit: int | None  # None = unlimited (only meaningful when enabled)

    def covers(self, quantity: int) -> bool:
        return self.enabled and (self.limit is None or self.limit >= quantity)

    def as_dict(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "limit": self.limit if self.enabled else 0}


Ents = dict[str, Ent]
OFF = Ent(False, 0)


def at_least(a: Ent, b: Ent) -> bool:
    """Does `a` allow everything `b` allows (on where b is on, a limit at least as high)?"""
    if not b.enabled:
        return True
    if not a.enabled:
        return False
    if a.limit is None:
        return True
    return b.limit is not None and a.limit >= b.limit


def changes_between(held: Ents, new: Ents) -> dict[str, list]:
    """What moving from `held` to `new` changes: {"gained": [keys], "lost": [keys], "limits": [...]}.

    A lowered limit is listed in `limits` (from > to); `is_upgrade` treats it as a loss.
    """
    gained, lost, limits = [], [], []
    for key in sorted(set(held) | set(new)):
        a, b = held.get(key, OFF), new.get(key, OFF)
        if not a.enabled and b.enabled:
            gained.append(key)
        elif a.enabled and not b.enabled:
            lost.append(key)
        elif a.enabled and b.enabled and a.limit != b.limit:
            limits.append({"feature": key, "from": a.limit, "to": b.limit})
    return {"gained": gained, "lost": lost, "limits": limits}


def _raised(change: dict) -> bool:
    return change["to"] is None or (change["from"] is not None and change["to"] > change["from"])


def is_upgrade(changes: dict[str, list]) -> bool:
    """An upgrade takes nothing away (no feature lost, no limit lowered) and adds something."""
    if changes["lost"] or any(not _raised(c) for c in changes["limits"]):
        return False
    return bool(changes["gained"]) or any(_raised(c) for c in changes["limits"])


@dataclass(frozen=True)
class Need:
    """What the account needs next period for one feature: a quantity (limit) or just access (unlock)."""

    feature: str
    quantity: int | None = None  # None: the feature must be on (a locked feature the signal is about)
    reason: str = "projected"  # projected | seats | unlock

    def met_by(self, ents: Ents) -> bool:
        ent = ents.get(self.feature, OFF)
        return ent.enabled if self.quantity is None else ent.covers(self.quantity)


@dataclass(frozen=True)
class Candidate:
    kind: str  # "tier" | "addon" | "bundle"
    key: str
    tier: Tier
    addons: tuple[AddOn, ...]
    bundle: Bundle | None
    tier_price: Price
    addon_prices: tuple[Price, ...]
    changes: dict[str, list]
    monthly_amount: int
    entitlements: Ents = field(default_factory=dict, compare=False, repr=False)
    audience: tuple[str, str] | None = None  # (audience_kind, audience) of a bundle

    @property
    def label(self) -> str:
        if self.bundle is not None:
            return self.bundle.name
        if self.kind == "addon":
            return f"{self.tier.name} + {', '.join(a.name for a in self.addons)}"
        return self.tier.name

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "label": self.label,
            "tier": self.tier.key,
            "tier_version": self.tier.version,
            "addons": [a.key for a in self.addons],
            "bundle": self.bundle.key if self.bundle is not None else None,
            "price_ids": [self.tier_price.pk, *(p.pk for p in self.addon_prices)],
            "monthly_amount": self.monthly_amount,
            "changes": self.changes,
        }


@dataclass(frozen=True)
class Recommendation:
    target_kind: str
    target_key: str
    candidate: Candidate
    anchor: Candidate | None
    evidence: dict[str, Any]
    holding: dict[str, Any]
    alternatives: list[Candidate] = field(default_factory=list)
    needs: tuple[Need, ...] = ()
