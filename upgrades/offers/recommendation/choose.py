"""Choosing among candidates: the LOWEST-priced upgrade that meets every projected need.

Never a blind "next tier": a cheaper add-on that covers the need beats a tier, and a tier that
misses the need is never chosen while something that meets it exists. Among equal prices the
account's segment decides (an industry or role bundle over a plain tier), then the smaller change.
Pure: plain candidates and needs in, a choice out (property-tested in
tests/upgrades/offers/test_recommendation_property.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from upgrades.offers.recommendation.types import Candidate, Need, is_upgrade

KIND_ORDER = {"addon": 0, "bundle": 1, "tier": 2}


@dataclass(frozen=True)
class Segment:
    industry: str = ""
    size_band: str = ""
    role: str = ""

    def matches(self, candidate: Candidate) -> int:
        """1 when the candidate is a bundle aimed at this account's industry or contact's role."""
        if candidate.audience is None:
            return 0
        kind, audience = candidate.audience
        wanted = self.industry if kind == "industry" else self.role if kind == "role" else ""
        return int(bool(wanted) and wanted.strip().lower() == audience.strip().lower())

    def as_dict(self) -> dict[str, str]:
        return {"industry": self.industry, "size_band": self.size_band, "role": self.role}


@dataclass(frozen=True)
class Choice:
    candidate: Candidate
    meets_all: bool
    unmet: tuple[Need, ...]
    alternatives: tuple[Candidate, ...]


def unmet_needs(candidate: Candidate, needs: Sequence[Need]) -> tuple[Need, ...]:
    return tuple(n for n in needs if not n.met_by(candidate.entitlements))


def _order(segment: Segment | None):
    def key(c: Candidate):
        match = segment.matches(c) if segment is not None else 0
        size = len(c.changes["gained"]) + len(c.changes["limits"])
        return (c.monthly_amount, -match, c.tier.rank, KIND_ORDER.get(c.kind, 9), size, len(c.addons), c.key)

    return key


def choose(candidates: Sequence[Candidate], needs: Sequence[Need], *, segment: Segment | None = None) -> Choice | None:
    """The cheapest upgrade meeting every need (segment among equals); when none meets them all, the
    cheapest of those meeting the most (the evidence says what is still unmet). None: no upgrade at all."""
    upgrades = [c for c in candidates if is_upgrade(c.changes)]
    if not upgrades:
        return None
    order = _order(segment)
    fits = sorted((c for c in upgrades if not unmet_needs(c, needs)), key=order)
    if fits:
        return Choice(fits[0], True, (), tuple(fits[1:]))
    best = min(len(unmet_needs(c, needs)) for c in upgrades)
    pool = sorted((c for c in upgrades if len(unmet_needs(c, needs)) == best), key=order)
    rest = sorted((c for c in upgrades if c is not pool[0]), key=order)
    return Choice(pool[0], False, unmet_needs(pool[0], needs), tuple(rest))


def pick_target(candidates: Sequence[Candidate], *, kind: str, key: str) -> Candidate | None:
    """The named tier, add-on or bundle, only if it is an upgrade for this account."""
    for c in sorted(candidates, key=lambda c: c.monthly_amount):
        if c.kind == kind and c.key == key and is_upgrade(c.changes):
            return c
    return None


def pick_anchor(candidates: Sequence[Candidate], chosen: Candidate) -> Candidate | None:
    """The tier flagged is_anchor above the chosen option's tier, else the next tier up; an upgrade, or None."""
    tiers = sorted(
        (c for c in candidates if c.kind == "tier" and c.tier.rank > chosen.tier.rank and is_upgrade(c.changes)),
        key=lambda c: (c.tier.rank, c.monthly_amount),
    )
    flagged = [c for c in tiers if c.tier.is_anchor]
    return flagged[0] if flagged else (tiers[0] if tiers else None)
