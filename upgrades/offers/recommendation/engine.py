"""`recommend`: holding -> needs (projections, seats, locked features) -> candidates -> the choice.

Reads: the catalog snapshot (pass one per batch: `load_catalog`), the licence with its exact
versions, one rollup query; nothing here grows with the catalog or the number of accounts.
"""

from __future__ import annotations

import datetime

from django.utils import timezone

from accounts.models import Contact, CustomerAccount, Tenant
from billing.models import License
from upgrades.offers.errors import InvalidInput, NotFound, OffersErrorCode
from upgrades.offers.recommendation.candidates import build_candidates
from upgrades.offers.recommendation.catalog import CatalogSnapshot, load_catalog
from upgrades.offers.recommendation.choose import Segment, choose, pick_anchor, pick_target
from upgrades.offers.recommendation.evidence import build_evidence
from upgrades.offers.recommendation.holding import load_holding
from upgrades.offers.recommendation.needs import locked_features_from_signal, meter_needs, needs_for
from upgrades.offers.recommendation.prefetch import Prefetched
from upgrades.offers.recommendation.projection import DEFAULT_LOOKBACK_WEEKS
from upgrades.offers.recommendation.types import Recommendation

TARGET_KINDS = ("tier", "addon", "bundle")


def _nothing(message: str, **details) -> InvalidInput:
    return InvalidInput(message, code=OffersErrorCode.NOTHING_TO_OFFER, details=details)


def segment_of(tenant: Tenant, account: CustomerAccount) -> Segment:
    """Industry and size band from the account; the role of its first contact that has one."""
    role = (
        Contact.objects.for_tenant(tenant).filter(account_id=account.pk).exclude(role="")
        .order_by("id").values_list("role", flat=True).first()
    )  # fmt: skip
    return Segment(industry=account.industry or "", size_band=account.size_band or "", role=role or "")


def recommend(
    tenant: Tenant,
    *,
    account: CustomerAccount,
    license: License,
    signal=None,
    target_kind: str | None = None,
    target_key: str | None = None,
    segment: Segment | None = None,
    now: datetime.datetime | None = None,
    catalog: CatalogSnapshot | None = None,
    lookback_weeks: int = DEFAULT_LOOKBACK_WEEKS,
    prefetched: Prefetched | None = None,
) -> Recommendation:
    """The option to offer this account now, its anchor and alternatives, with evidence.

    Raises InvalidInput(code=nothing_to_offer) when no option is an upgrade for this account (or the
    named target is not one), NotFound when the licence or signal belongs to another account or tenant.
    """
    now = now or timezone.now()
    if license.tenant_id != tenant.pk or license.account_id != account.pk or account.tenant_id != tenant.pk:
        raise NotFound("No such licence for this account.")
    if signal is not None and (signal.tenant_id != tenant.pk or signal.account_id != account.pk):
        raise NotFound("No such signal for this account.")
    if target_kind is None and signal is not None:
        target_kind, target_key = signal.target_kind, signal.target_key
    target_kind = target_kind or "lowest_fit"
    if target_kind not in (*TARGET_KINDS, "lowest_fit", "none"):
        raise InvalidInput("Unknown target kind.", code=OffersErrorCode.INVALID, details={"target_kind": target_kind})
    catalog = catalog if catalog is not None else load_catalog(tenant)
    if segment is None and prefetched is not None and account.pk in prefetched.licences:
        segment = Segment(industry=account.industry or "", size_band=account.size_band or "",
                          role=prefetched.roles.get(account.pk, ""))  # fmt: skip
    segment = segment if segment is not None else segment_of(tenant, account)
    holding = load_holding(tenant, license=license, catalog=catalog, prefetched=prefetched)
    meters = meter_needs(tenant, holding=holding, catalog=catalog, now=now, lookback_weeks=lookback_weeks,
                         prefetched=prefetched)  # fmt: skip
    locked = [
        k for k in locked_features_from_signal(getattr(signal, "evidence", None))
        if not holding.entitlements.get(k) or not holding.entitlements[k].enabled
    ]  # fmt: skip
    needs = needs_for(holding, meters, locked=locked, catalog=catalog)
    candidates = build_candidates(holding, catalog)
    if target_kind in TARGET_KINDS:
        chosen = pick_target(candidates, kind=target_kind, key=target_key or "")
        if chosen is None:
            raise _nothing(f"{target_kind} {target_key!r} is not an upgrade for this account.",
                           target_kind=target_kind, target_key=target_key)  # fmt: skip
        unmet = tuple(n for n in needs if not n.met_by(chosen.entitlements))
        alternatives = []
    else:
        choice = choose(candidates, needs, segment=segment)
        if choice is None:
            raise _nothing("Nothing in the catalog is an upgrade for this account.", account=account.external_id)
        chosen, unmet, alternatives = choice.candidate, choice.unmet, list(choice.alternatives[:3])
    names = {f.key: f.name for f in catalog.features.get(holding.tier.product_id, [])}
    evidence = build_evidence(
        meters=meters,
        locked=locked,
        feature_names=names,
        signal=signal,
        offered_label=chosen.label,
        meets_all=not unmet,
        unmet=[n.feature for n in unmet],
        model_inputs={
            "lookback_weeks": lookback_weeks,
            "as_of": now.isoformat(),
            "segment": segment.as_dict(),
            "needs": [{"feature": n.feature, "quantity": n.quantity, "reason": n.reason} for n in needs],
            "chosen_by": "target" if target_kind in TARGET_KINDS else "lowest_price_meeting_every_need",
        },
    )
    return Recommendation(
        target_kind=chosen.kind,
        target_key=chosen.key,
        candidate=chosen,
        anchor=pick_anchor(candidates, chosen),
        evidence=evidence,
        holding=holding.as_dict(),
        alternatives=alternatives,
        needs=needs,
    )
