"""What pricing reads from the engine's recommendation, as Protocols.

Pricing types against these shapes instead of importing the engine's dataclasses, so either side
can change its internals (and tests can hand in any object with the same attributes). The engine's
`Candidate` and `Recommendation` (upgrades/offers/recommendation) satisfy them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from catalog.models import AddOn, Price, Tier


class CandidateLike(Protocol):
    @property
    def kind(self) -> str: ...  # "tier" | "addon" | "bundle"

    @property
    def key(self) -> str: ...

    @property
    def tier(self) -> Tier: ...  # the tier after the change

    @property
    def addons(self) -> Sequence[AddOn]: ...  # the add-ons after the change

    @property
    def tier_price(self) -> Price: ...  # on the licence's interval

    @property
    def addon_prices(self) -> Sequence[Price]: ...

    @property
    def changes(self) -> dict[str, list]: ...

    @property
    def monthly_amount(self) -> int: ...


class RecommendationLike(Protocol):
    @property
    def target_kind(self) -> str: ...

    @property
    def target_key(self) -> str: ...

    @property
    def candidate(self) -> CandidateLike: ...

    @property
    def anchor(self) -> CandidateLike | None: ...

    @property
    def evidence(self) -> dict[str, Any]: ...

    @property
    def holding(self) -> dict[str, Any]: ...


def candidate_label(candidate: CandidateLike) -> str:
    """The engine's `label` when it has one, else the tier's name (plus add-ons)."""
    label = getattr(candidate, "label", None)
    if isinstance(label, str) and label:
        return label
    names = [a.name for a in candidate.addons]
    return f"{candidate.tier.name} + {', '.join(names)}" if names and candidate.kind == "addon" else candidate.tier.name
