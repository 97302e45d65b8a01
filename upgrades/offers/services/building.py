"""Building offers: recommendation -> pricing -> one arbitrated write -> release.

Idempotent by construction (a task may run twice, two workers may race): the offer row is written
under the partial unique constraint `offer_one_open_per_account_target` (one open offer per account
and target) inside a savepoint; the loser of a race gets IntegrityError and takes the winner's row
under a lock. A rebuilt offer still in draft is refreshed; one already sent is returned as it is.
A signal already acted on returns the offer it made. No live settings: no offer, a clear error.

Only signal kinds in the live settings' `signal_kinds` make offers automatically (`automatic=True`,
the tasks and the sweep); a CSM or PM may build one on demand for any account.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import CustomerAccount, Tenant
from accounts.services import Actor, actor_label, record_audit
from billing.models import License
from catalog.models import Entitlement, Tier
from upgrades.offers.errors import Conflict, InvalidInput, NotFound, OffersErrorCode
from upgrades.offers.models import OPEN_STATES, Offer, OfferEvent, OfferSettings, OfferState
from upgrades.offers.recommendation import (
    CatalogSnapshot,
    Prefetched,
    Recommendation,
    load_catalog,
    prefetch_accounts,
    recommend,
)
from upgrades.offers.recommendation.free import default_free_tier, free_tier_licence
from upgrades.offers.selectors import get_live_settings
from upgrades.offers.services.lifecycle import lock_offer, release_offer, release_offers
from upgrades.rules.models import Signal, SignalState

if TYPE_CHECKING:
    from upgrades.offers.pricing import PricingBatch

logger = logging.getLogger(__name__)

ENGINE_ACTOR = "offer-engine"
SNAPSHOT_FIELDS = (
    "holding", "evidence", "options", "recommended_option", "anchor", "discount", "discount_approval_needed",
    "quote", "quoted_at", "roi", "currency", "requires_review", "expires_at", "variant", "signal",
    "settings_version",
)  # fmt: skip


def require_live_settings(tenant: Tenant) -> OfferSettings:
    settings = get_live_settings(tenant)
    if settings is None:
        raise InvalidInput(
            "No offer settings are live: approve and put a version live before offers are made.",
            code=OffersErrorCode.NO_LIVE_SETTINGS,
        )
    return settings


def _licence_of(tenant: Tenant, account: CustomerAccount, *, now: datetime | None = None) -> License:
    """The account's licence; an account without one holds the default free tier (an unsaved licence)."""
    lic = License.objects.for_tenant(tenant).filter(account_id=account.pk).first()
    if lic is None:
        free = default_free_tier(tenant)
        if free is not None:
            return free_tier_licence(tenant, account=account, tier=free, now=now or timezone.now())
        raise InvalidInput("This account holds no licence to upgrade.", code=OffersErrorCode.NOTHING_TO_OFFER,
                           details={"account": account.external_id})  # fmt: skip
    return lic


def _snapshot(
    tenant: Tenant,
    *,
    lic: License,
    rec: Recommendation,
    settings: OfferSettings,
    signal: Signal | None,
    variant: str,
    now: datetime,
    shared: PricingBatch | None = None,
) -> dict:
    from upgrades.offers.pricing import price_offer

    pricing = price_offer(tenant, license=lic, recommendation=rec, settings=settings, variant=variant, now=now,
                          shared=shared)  # fmt: skip
    evidence = {**rec.evidence, "alternatives": [c.as_dict() for c in rec.alternatives],
                "recommended": rec.candidate.as_dict()}  # fmt: skip
    return {
        "holding": rec.holding,
        "evidence": evidence,
        "options": pricing.options,
        "recommended_option": pricing.recommended_option,
        "anchor": pricing.anchor,
        "discount": pricing.discount,
        "discount_approval_needed": pricing.discount_approval_needed,
        "quote": pricing.quote,
        "quoted_at": now,
        "roi": pricing.roi,
        "currency": pricing.currency,
        "requires_review": bool((signal is not None and signal.requires_csm_review) or settings.requires_csm_review),
        "expires_at": now + timedelta(days=settings.expiry_days),
        "variant": variant,
        "signal": signal,
        "settings_version": settings,
    }


def _write(tenant: Tenant, *, account: CustomerAccount, rec: Recommendation, fields: dict, actor: Actor,
           now: datetime) -> tuple[Offer, bool]:  # fmt: skip
    """The one arbitrated write: insert under the partial unique constraint, or take the open offer."""
    try:
        with transaction.atomic():  # a savepoint: the losing insert rolls back alone
            offer = Offer.objects.create(
                tenant=tenant, account=account, target_kind=rec.target_kind, target_key=rec.target_key,
                state=OfferState.DRAFT, created_by_label=actor_label(actor)[:200], created_at=now, **fields,
            )  # fmt: skip
    except IntegrityError:
        existing = (
            Offer.objects.for_tenant(tenant).filter(account=account, target_kind=rec.target_kind,
                                                    target_key=rec.target_key, state__in=OPEN_STATES)
            .values_list("pk", flat=True).first()
        )  # fmt: skip
        if existing is None:
            raise
        offer = lock_offer(tenant, existing)
        if offer.state == OfferState.DRAFT:  # still nobody saw it: refreshed with today's numbers
            for name, value in fields.items():
                setattr(offer, name, value)
            offer.save(update_fields=[*SNAPSHOT_FIELDS, "updated_at"])
        return offer, False
    OfferEvent.objects.create(tenant=tenant, offer=offer, from_state="", to_state=OfferState.DRAFT,
                              actor_label=actor_label(actor)[:200], note="built", at=now)  # fmt: skip
    record_audit(
        tenant, actor=actor, action="offer.built", obj=offer,
        after={"account": account.external_id, "target_kind": rec.target_kind, "target_key": rec.target_key,
               "signal": fields["signal"].pk if fields["signal"] is not None else None,
               "recommended_option": fields["recommended_option"], "sentence": rec.evidence.get("sentence", "")},
    )  # fmt: skip
    return offer, True


def build_offer(
    tenant: Tenant,
    *,
    account: CustomerAccount,
    actor: Actor,
    signal: Signal | None = None,
    target_kind: str | None = None,
    target_key: str | None = None,
    variant: str = "",
    release: bool = True,
    now: datetime | None = None,
    automatic: bool = False,
    settings: OfferSettings | None = None,
    catalog: CatalogSnapshot | None = None,
    prefetched: Prefetched | None = None,
) -> Offer:
    """The open offer for this account and target: built now, or the one already made (never a second).

    Raises InvalidInput (no_live_settings, nothing_to_offer, invalid), NotFound for another tenant's or
    another account's ids, Conflict(wrong_state) for a signal closed without an offer.
    """
    now = now or timezone.now()
    if account.tenant_id != tenant.pk:
        raise NotFound("No such account.")
    if signal is not None and (signal.tenant_id != tenant.pk or signal.account_id != account.pk):
        raise NotFound("No such signal for this account.")
    settings = settings or require_live_settings(tenant)
    arms = _experiment_arms(tenant, now=now) if automatic and signal is not None else None
    with transaction.atomic():  # one transaction per offer: its reads, the write, the release
        offer = _build(tenant, account=account, actor=actor, signal=signal, target_kind=target_kind,
                       target_key=target_key, variant=variant, release=release, now=now, automatic=automatic,
                       settings=settings, catalog=catalog, prefetched=prefetched, arms=arms)  # fmt: skip
    if offer is None:
        raise InvalidInput("The account is in an experiment's control group: no offer is sent.",
                           code=OffersErrorCode.INVALID, details={"signal": signal.pk if signal else None})  # fmt: skip
    return offer


def _build(tenant: Tenant, *, account: CustomerAccount, actor: Actor, signal: Signal | None, target_kind: str | None,
           target_key: str | None, variant: str, release: bool, now: datetime, automatic: bool,
           settings: OfferSettings, catalog: CatalogSnapshot | None,
           prefetched: Prefetched | None, arms=None) -> Offer | None:  # fmt: skip
    if signal is not None:
        made = Offer.objects.for_tenant(tenant).filter(signal=signal).order_by("-id").first()
        if made is not None:
            return made  # the signal was acted on (a task run twice): its offer, unchanged
        if signal.state != SignalState.OPEN:
            raise Conflict(f"The signal is {signal.get_state_display().lower()}; no offer is made from it.",
                           code=OffersErrorCode.WRONG_STATE, details={"signal": signal.pk})  # fmt: skip
        if automatic and signal.kind not in (settings.signal_kinds or []):
            raise InvalidInput(f"Offers are not made automatically for {signal.get_kind_display().lower()} signals.",
                               code=OffersErrorCode.INVALID, details={"signal_kind": signal.kind})  # fmt: skip
    lic = prefetched.licences.get(account.pk) if prefetched is not None else None
    lic = lic or _licence_of(tenant, account, now=now)
    rec = recommend(tenant, account=account, license=lic, signal=signal, target_kind=target_kind,
                    target_key=target_key, now=now, catalog=catalog, prefetched=prefetched)  # fmt: skip
    decision = arms(account=account, signal=signal) if arms is not None and signal is not None else None
    variant = decision.discount_variant if decision is not None else variant
    fields = _snapshot(tenant, lic=lic, rec=rec, settings=settings, signal=signal, variant=variant, now=now)
    if decision is not None and decision.apply(fields):
        return None  # a control of an experiment: recorded there, never written or sent
    offer, _ = _write(tenant, account=account, rec=rec, fields=fields, actor=actor, now=now)
    if signal is not None:  # made now or already open for this target: either way the offer answers it
        from upgrades.rules.services import mark_signal_acted_on

        mark_signal_acted_on(tenant, signal=signal, reference=f"offer:{offer.pk}")
    if release and offer.state == OfferState.DRAFT:
        offer = release_offer(tenant, offer=offer, actor=actor, now=now)
    return offer


NOTHING_TO_OFFER_REASON = "nothing to offer"

# Experiments (upgrades.experiments, a layer above: offers never import it) register here from
# upgrades.apps ready(). A hook is called once per build or batch, `hook(tenant, now=...)`, and returns None
# (nothing running) or `arm(account=, signal=) -> decision | None`; a decision has `discount_variant` (priced
# with) and `apply(fields) -> bool` (sets the arm on the snapshot; True: a control, the offer is withheld).
EXPERIMENT_HOOKS: list = []


def _experiment_arms(tenant: Tenant, *, now: datetime):
    arms = [a for a in (hook(tenant, now=now) for hook in EXPERIMENT_HOOKS) if a is not None]
    if not arms:
        return None

    def arm(*, account: CustomerAccount, signal: Signal):
        for one in arms:
            decision = one(account=account, signal=signal)
            if decision is not None:
                return decision
        return None

    return arm


def build_offers_for_signals(
    tenant: Tenant, *, signal_ids: Iterable[int], now: datetime | None = None, actor: Actor = ENGINE_ACTOR
) -> list[Offer]:
    """Offers for these open signals of the tenant (kinds the live settings allow; others, and signals
    already acted on, skipped), set-based: a fixed number of queries per batch, not per offer.

    One settings read, one catalog snapshot, one prefetch of the accounts and shared pricing reads for
    the batch; the offers are written in one INSERT ... ON CONFLICT DO NOTHING under the partial unique
    constraint (the arbitrated write: an open offer that already exists, from another worker or an
    earlier build, is read back and returned, a draft refreshed), released in bulk, and their signals
    marked acted on in one statement (a signal answered by an offer already open too, so the sweep stops
    queuing it). A signal with nothing to offer (top tier, no fitting option, no licence) is dismissed by
    the engine with the reason "nothing to offer". Another tenant's signal ids are simply not found.
    """
    from upgrades.offers.pricing import PricingBatch
    from upgrades.offers.services.building_batch import write_offers
    from upgrades.rules.services import dismiss_signals_by_engine, mark_signals_acted_on

    settings = require_live_settings(tenant)
    kinds = list(settings.signal_kinds or [])
    signals = list(
        Signal.objects.for_tenant(tenant).filter(pk__in=list(signal_ids), kind__in=kinds, state=SignalState.OPEN)
        .select_related("account").order_by("pk")
    )  # fmt: skip
    if not signals:
        return []
    catalog = load_catalog(tenant)
    now = now or timezone.now()
    meter_ids = [m.pk for m in catalog.meters.values()]
    prefetched = prefetch_accounts(tenant, account_ids=[s.account_id for s in signals], meter_ids=meter_ids, now=now)
    shared = PricingBatch(tenant)
    free = _free_tier_for(tenant, signals=signals, prefetched=prefetched)
    arms = _experiment_arms(tenant, now=now)
    with transaction.atomic():
        planned, nothing = [], []
        for signal in signals:
            lic = prefetched.licences.get(signal.account_id)
            if lic is None and free is not None:  # no licence row: the account holds the default free tier
                lic = free_tier_licence(tenant, account=signal.account, tier=free, now=now)
            try:
                if lic is None:
                    raise InvalidInput("This account holds no licence to upgrade.",
                                       code=OffersErrorCode.NOTHING_TO_OFFER)  # fmt: skip
                rec = recommend(tenant, account=signal.account, license=lic, signal=signal, now=now, catalog=catalog,
                                prefetched=prefetched)  # fmt: skip
                decision = arms(account=signal.account, signal=signal) if arms is not None else None
                fields = _snapshot(tenant, lic=lic, rec=rec, settings=settings, signal=signal, now=now, shared=shared,
                                   variant=decision.discount_variant if decision is not None else "")  # fmt: skip
                if decision is not None and decision.apply(fields):
                    continue  # a control of an experiment: the offer is recorded there, never written or sent
            except InvalidInput as exc:
                logger.info("offer not built", extra={"tenant": tenant.pk, "signal": signal.pk, "code": exc.code})
                if exc.code == OffersErrorCode.NOTHING_TO_OFFER:
                    nothing.append(signal.pk)
                continue
            planned.append((signal, rec, fields))
        written = write_offers(tenant, planned=planned, actor=actor, now=now)
        drafts = [offer for offer, _ in written if offer.state == OfferState.DRAFT]
        released = {o.pk: o for o in release_offers(tenant, offers=drafts, actor=actor, now=now)} if drafts else {}
        # A signal whose target already has an open offer is answered by that offer (not left open and
        # queued again by the sweep).
        acted = {signal.pk: f"offer:{offer.pk}" for (signal, _, _), (offer, _) in zip(planned, written, strict=True)}
        if acted:
            mark_signals_acted_on(tenant, signal_ids_to_reference=acted)
        if nothing:
            dismiss_signals_by_engine(tenant, signal_ids=nothing, reason=NOTHING_TO_OFFER_REASON)
    return [released.get(offer.pk, offer) for offer, _ in written]


def _free_tier_for(tenant: Tenant, *, signals: list[Signal], prefetched: Prefetched) -> Tier | None:
    """The default free tier when some of the batch's accounts hold no licence row (its entitlement rows
    added to the batch's reads), else None; two queries per batch at most."""
    if all(s.account_id in prefetched.licences for s in signals):
        return None
    free = default_free_tier(tenant)
    if free is not None and free.pk not in prefetched.tier_rows:
        prefetched.tier_rows[free.pk] = list(Entitlement.objects.for_tenant(tenant).filter(tier=free))
    return free


def pending_signal_ids(tenant: Tenant, *, limit: int = 50_000) -> list[int]:
    """Open signals of the kinds the live settings allow, oldest first (the sweep's work). Empty without
    live settings."""
    settings = get_live_settings(tenant)
    if settings is None or not settings.signal_kinds:
        return []
    return list(
        Signal.objects.for_tenant(tenant).filter(state=SignalState.OPEN, kind__in=list(settings.signal_kinds))
        .order_by("pk").values_list("pk", flat=True)[:limit]
    )  # fmt: skip


SWEEP_REMEMBER_S = 600


def signals_to_sweep(tenant: Tenant, *, remember_s: int = SWEEP_REMEMBER_S) -> list[int]:
    """The pending signals the sweep has not sent in the last `remember_s` seconds.

    The sweep runs every minute; a backlog takes longer than that to build, so without this each sweep
    would queue the same signals again. The cache remembers the highest signal id sent per tenant; when
    the mark expires every still-open signal is sent again (a lost task, a signal that had nothing to
    offer). Only an optimisation: the database's arbitrated write keeps offers single either way.
    """
    from django.core.cache import cache

    ids = pending_signal_ids(tenant)
    key = f"offers:swept:{tenant.pk}:{int(tenant.created_at.timestamp())}"
    sent_up_to = cache.get(key) or 0
    fresh = [i for i in ids if i > sent_up_to]
    if fresh:
        cache.set(key, fresh[-1], timeout=remember_s)
    return fresh
