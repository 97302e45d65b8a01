"""Trials: a time-limited trial of a higher tier or an add-on, on top of the paid plan.

A trial is a billing `LicenseGrant` of kind trial (billing.services.licenses.start_grant) plus a
`Trial` row that remembers what it unlocked, where it came from and how it ended.

Invariants:
- It sits on top of the paid plan: nothing here writes the `License` (its tier, price or billing
  period); the grant is an overlay that usage's effective entitlements read.
- One trial per account and target per policy window (`OfferSettings.trial_window_days`): starts
  for one account are serialised by a row lock on the account, so two concurrent starts can't both
  pass the window check; the partial unique constraint `trial_one_active_per_account_target` is
  the backstop behind it.
- It ends on its own: `end_due_trials` (beat) ends the grant at `ends_at` (billing's
  `expire_grants` may have done it already: `end_grant` on an ended grant is a no-op) and marks the
  trial ended unless the customer upgraded. Nothing created during the trial is deleted.
- Paying for the upgrade mid-trial converts it (`convert_trial_on_settle`): the grant keeps running
  to the end that was promised; no silent end, no change to what was charged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Capability, CustomerAccount, Membership, Tenant, User
from accounts.services import Actor, actor_label, record_audit, snapshot
from accounts.tenancy import each_tenant
from billing import selectors as billing_selectors
from billing.models import GrantKind, License, PlanChange
from billing.services.licenses import end_grant, start_grant
from catalog import selectors as catalog_selectors
from catalog.models import AddOn, Tier
from upgrades.offers.errors import Conflict, InvalidInput, NotFound, OffersErrorCode, PermissionDenied
from upgrades.offers.models import Offer, Trial, TrialState
from upgrades.offers.selectors import get_live_settings
from upgrades.offers.services.trials_wins import record_early_wins
from usage.selectors import ENTITLED_STATUSES

TARGET_KINDS = ("tier", "addon")
SOURCES = ("offer", "csm", "api", "portal")
MAX_TRIAL_DAYS = 90  # Trial days are bounded like OfferSettings.trial_days.
# Staff may start a trial with either capability (a CSM reviewing offers, or someone managing billing).
STAFF_CAPABILITIES = (Capability.REVIEW_OFFERS, Capability.MANAGE_BILLING)
SWEEP_BATCH = 1000


@dataclass(frozen=True)
class PaidPlan:
    """What the account pays for today (the grants aside): its tier and add-ons."""

    license: License | None
    tier: Tier | None
    addons: tuple[AddOn, ...]


# --- reads used by the writes below --------------------------------------------------------------


def paid_plan(tenant: Tenant, *, account: CustomerAccount) -> PaidPlan:
    """The licence's tier and add-ons when it carries them (else the published free tier), no grants."""
    license_ = billing_selectors.get_license_for_account(tenant, account)
    if license_ is not None and license_.status in ENTITLED_STATUSES:
        return PaidPlan(license=license_, tier=license_.tier, addons=tuple(license_.addons.all()))
    return PaidPlan(license=license_, tier=catalog_selectors.get_default_tier(tenant), addons=())


def resolve_target(tenant: Tenant, *, target_kind: str, target_key: str) -> Tier | AddOn:
    """The published tier or add-on with this key (the newest published version)."""
    if target_kind == "tier":
        try:
            return catalog_selectors.get_published_tier(tenant, target_key)
        except NotFound:
            raise InvalidInput(
                "Invalid trial.", code=OffersErrorCode.INVALID, details={"tier": ["No published tier with this key."]}
            ) from None
    addon = catalog_selectors.list_published_addons(tenant).filter(key=target_key).order_by("-version").first()
    if addon is None:
        raise InvalidInput(
            "Invalid trial.", code=OffersErrorCode.INVALID, details={"addon": ["No published add-on with this key."]}
        )
    return addon


def unlocked_features(tenant: Tenant, *, plan: PaidPlan, target: Tier | AddOn) -> list[str]:
    """Feature keys the trial enables that the paid plan doesn't (the entitlement diff).

    Computed the way usage combines them (catalog.selectors.entitlements_for; a granted tier is an
    overlay on the licence tier, an add-on joins the licence's add-ons)."""
    paid = (
        catalog_selectors.entitlements_for(tenant, tier=plan.tier, addons=plan.addons)
        if plan.tier or plan.addons
        else {}
    )
    if isinstance(target, Tier):
        trial = catalog_selectors.entitlements_for(tenant, tier=target, addons=plan.addons)
    else:
        trial = catalog_selectors.entitlements_for(tenant, tier=plan.tier, addons=[*plan.addons, target])
    return sorted(key for key, ent in trial.items() if ent.enabled and not (key in paid and paid[key].enabled))


def _holds_target(plan: PaidPlan, *, target: Tier | AddOn) -> bool:
    """Does the paid plan already give what the trial would (the same or a higher tier, the add-on)?"""
    if isinstance(target, Tier):
        return plan.tier is not None and plan.tier.product_id == target.product_id and plan.tier.rank >= target.rank
    return target.key in {a.key for a in plan.addons}


def _check_target(plan: PaidPlan, *, target: Tier | AddOn, field: str) -> None:
    if _holds_target(plan, target=target):
        reason = (
            "The account's plan already includes this tier or a higher one."
            if isinstance(target, Tier)
            else "The account's plan already includes this add-on."
        )
        raise InvalidInput(
            "This trial isn't available for this account.",
            code=OffersErrorCode.TRIAL_NOT_ALLOWED,
            details={field: [reason]},
        )
    offered_with = {t.key for t in target.compatible_tiers.all()} if isinstance(target, AddOn) else set()
    if offered_with and plan.tier is not None and plan.tier.key not in offered_with:
        raise InvalidInput(
            "This trial isn't available for this account.",
            code=OffersErrorCode.TRIAL_NOT_ALLOWED,
            details={field: [f"This add-on is not offered with {plan.tier.name}."]},
        )


def _check_actor(tenant: Tenant, actor: Actor) -> None:
    """Staff (a signed-in person) need REVIEW_OFFERS or MANAGE_BILLING; API keys and the system pass
    (the API checks the key's write scope, the portal its session)."""
    if not isinstance(actor, User) or actor.is_superuser:
        return
    membership = Membership.objects.for_tenant(tenant).filter(user=actor).first()
    if membership is None or not any(membership.can(c) for c in STAFF_CAPABILITIES):
        raise PermissionDenied(
            "You may not start a trial: that needs the 'Review, send and withdraw offers; start trials' "
            "or the 'Change licences, revoke and restore' permission.",
            code=OffersErrorCode.NO_CAPABILITY,
        )


def trial_days(*, settings_days: int, target: Tier | AddOn, days: int | None) -> int:
    """Explicit days, else the live settings' trial length, else the tier's default."""
    if days is not None:
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_TRIAL_DAYS:
            raise InvalidInput(
                "Invalid trial.",
                code=OffersErrorCode.INVALID,
                details={"days": [f"A whole number of days from 1 to {MAX_TRIAL_DAYS}."]},
            )
        return days
    return settings_days or getattr(target, "default_trial_days", 0) or 14


# Experiments (upgrades.experiments, a layer above: offers never import it) register
# `(tenant, offer) -> days | None` here from upgrades.apps ready(): a trial started from an offer built for
# an experiment's arm lasts the arm's `trial_days` (bounded 1..MAX_TRIAL_DAYS); None: the usual length.
TRIAL_DAYS_HOOKS: list[Callable[..., int | None]] = []


def _arm_days(tenant: Tenant, offer: Offer | None) -> int | None:
    if offer is None or not offer.variant:
        return None
    for hook in TRIAL_DAYS_HOOKS:
        days = hook(tenant, offer=offer)
        if isinstance(days, int) and not isinstance(days, bool) and days > 0:
            return min(days, MAX_TRIAL_DAYS)
    return None


def last_trial_in_window(
    tenant: Tenant, *, account: CustomerAccount, target_kind: str, target_key: str, window_days: int, now: datetime
) -> Trial | None:
    return (
        Trial.objects.for_tenant(tenant)
        .filter(account=account, target_kind=target_kind, target_key=target_key)
        .filter(starts_at__gt=now - timedelta(days=window_days))
        .order_by("-starts_at", "-id")
        .first()
    )


def _already_used(trial: Trial, *, window_days: int) -> Conflict:
    available = trial.starts_at + timedelta(days=window_days)
    return Conflict(
        "This account has already had a trial of this within the policy window.",
        code=OffersErrorCode.TRIAL_ALREADY_USED,
        details={"trial": trial.pk, "available_from": available.isoformat()},
    )


# --- writes -----------------------------------------------------------------------------------------


@transaction.atomic
def start_trial(
    tenant: Tenant,
    *,
    account: CustomerAccount,
    target_kind: str,
    target_key: str,
    actor: Actor,
    source: str = "api",
    offer: Offer | None = None,
    days: int | None = None,
    now: datetime | None = None,
) -> Trial:
    """Start a trial of a higher tier or an add-on for `days` (else the live settings' length).

    Refused: without live offer settings (409 no_live_settings), a target the paid plan already
    holds (400 trial_not_allowed), a second trial of the same target within the policy window
    (409 trial_already_used), staff without the capability (403 no_capability).
    """
    now = now or timezone.now()
    _check_actor(tenant, actor)
    field = target_kind if target_kind in TARGET_KINDS else "target_kind"
    errors: dict[str, list[str]] = {}
    if account.tenant_id != tenant.pk:
        raise NotFound("No such account.")
    if target_kind not in TARGET_KINDS:
        errors["target_kind"] = ["One of tier, addon."]
    if source not in SOURCES:
        errors["source"] = [f"One of {', '.join(SOURCES)}."]
    if offer is not None and (offer.tenant_id != tenant.pk or offer.account_id != account.pk):
        errors["offer"] = ["Not an offer for this account."]
    if errors:
        raise InvalidInput("Invalid trial.", code=OffersErrorCode.INVALID, details=errors)
    settings = get_live_settings(tenant)
    if settings is None:
        raise Conflict(
            "Trials need live offer settings: a person approves them before any trial starts.",
            code=OffersErrorCode.NO_LIVE_SETTINGS,
        )
    target = resolve_target(tenant, target_kind=target_kind, target_key=target_key)
    if days is None:
        days = _arm_days(tenant, offer)
    length = trial_days(settings_days=settings.trial_days, target=target, days=days)

    # Serialise starts for this account: a concurrent start waits here, then sees the first one's trial.
    account = CustomerAccount.objects.for_tenant(tenant).select_for_update().get(pk=account.pk)
    plan = paid_plan(tenant, account=account)
    _check_target(plan, target=target, field=field)
    previous = last_trial_in_window(
        tenant,
        account=account,
        target_kind=target_kind,
        target_key=target_key,
        window_days=settings.trial_window_days,
        now=now,
    )
    if previous is not None:
        raise _already_used(previous, window_days=settings.trial_window_days)

    unlocked = unlocked_features(tenant, plan=plan, target=target)
    ends_at = now + timedelta(days=length)
    reference = f"trial:{target_kind}:{target_key}" + (f":offer:{offer.pk}" if offer is not None else "")
    grant = start_grant(
        tenant,
        account=account,
        kind=GrantKind.TRIAL,
        actor=actor,
        tier=target if isinstance(target, Tier) else None,
        addon=target if isinstance(target, AddOn) else None,
        ends_at=ends_at,
        reason=f"Trial of {target.name} ({source})",
        reference=reference[:64],
    )
    trial = Trial(
        tenant=tenant,
        account=account,
        offer=offer,
        grant=grant,
        target_kind=target_kind,
        target_key=target.key,
        state=TrialState.ACTIVE,
        unlocked_features=unlocked,
        started_by_label=actor_label(actor)[:200],
        source=source,
        starts_at=now,
        ends_at=grant.ends_at,
    )
    try:
        with transaction.atomic():
            trial.save()
    except IntegrityError:  # the partial unique constraint: an active trial of this target exists
        existing = (
            Trial.objects.for_tenant(tenant)
            .filter(account=account, target_kind=target_kind, target_key=target_key, state=TrialState.ACTIVE)
            .first()
        )
        if existing is None:
            raise
        raise _already_used(existing, window_days=settings.trial_window_days) from None
    record_audit(
        tenant,
        actor=actor,
        action="trial.started",
        obj=trial,
        after=snapshot(trial, ["target_kind", "target_key", "source", "starts_at", "ends_at", "unlocked_features"]),
    )
    return trial


def lock_trial(tenant: Tenant, trial: Trial | int) -> Trial:
    trial_id = trial.pk if isinstance(trial, Trial) else trial
    return Trial.objects.for_tenant(tenant).select_for_update().select_related("grant").get(pk=trial_id)


def _upgraded(tenant: Tenant, trial: Trial) -> bool:
    """Has the paid plan come to include the trial's target (the customer chose to upgrade)?"""
    plan = paid_plan(tenant, account=trial.account)
    if plan.license is None or plan.license.status not in ENTITLED_STATUSES:
        return False
    try:
        target = resolve_target(tenant, target_kind=trial.target_kind, target_key=trial.target_key)
    except InvalidInput:
        return False
    return _holds_target(plan, target=target)


@transaction.atomic
def end_trial(tenant: Tenant, *, trial: Trial, actor: Actor = "system", now: datetime | None = None) -> Trial:
    """The sunset of one trial whose end has come: its grant ends (once), the trial is ended, or
    converted if the customer upgraded meanwhile. Data created during the trial stays (nothing deleted)."""
    now = now or timezone.now()
    locked = lock_trial(tenant, trial)
    grant = locked.grant
    ended_early = grant.ended_at is not None and grant.ended_at < locked.ends_at and grant.ended_at <= now
    if locked.ended_at is not None or (locked.ends_at > now and not ended_early):
        return locked
    end = grant.ended_at if ended_early else locked.ends_at
    record_early_wins(tenant, trial=locked, now=end)  # the final tally, up to the end
    end_grant(tenant, grant=grant, actor=actor, reason="trial ended", at=end)
    update = ["ended_at"]
    locked.ended_at = end
    if locked.state == TrialState.ACTIVE:
        if ended_early and not _upgraded(tenant, locked):
            locked.state = TrialState.CANCELLED  # someone ended the grant early (the licence page)
            update.append("state")
        elif _upgraded(tenant, locked):
            locked.state, locked.converted_at = TrialState.CONVERTED, now
            update += ["state", "converted_at"]
        else:
            locked.state = TrialState.ENDED
            update.append("state")
    locked.save(update_fields=update)
    record_audit(
        tenant,
        actor=actor,
        action="trial.ended",
        obj=locked,
        after={"state": locked.state, "ended_at": locked.ended_at.isoformat()},
    )
    return locked


def end_due_trials(*, now: datetime | None = None, tenant_id: int | None = None) -> int:
    """Beat: every trial past its end is sunset (tenant by tenant). Safe to run twice or concurrently."""
    now = now or timezone.now()
    count = 0
    for tenant in each_tenant():
        if tenant_id is not None and tenant.pk != tenant_id:
            continue
        due = (
            Trial.objects.for_tenant(tenant)
            .filter(ended_at__isnull=True)
            .filter(Q(ends_at__lte=now) | Q(grant__ended_at__lte=now))
            .order_by("ends_at", "id")
            .values_list("pk", flat=True)[:SWEEP_BATCH]
        )
        for trial_id in list(due):
            trial = Trial.objects.for_tenant(tenant).filter(pk=trial_id).first()
            if trial is not None and trial.ended_at is None:
                end_trial(tenant, trial=trial, now=now)
                count += 1
    return count


@transaction.atomic
def convert_trial_on_settle(tenant: Tenant, *, account: CustomerAccount, plan_change: PlanChange) -> list[Trial]:
    """The customer paid for the upgrade mid-trial: the trials whose target the new plan holds are
    converted. Their grants run on to the promised end (no silent end, nothing charged here).
    Called by the plan_change_settled receiver; idempotent (a converted trial stays as it is)."""
    target_tier = plan_change.target_price.tier
    addon_keys = {p.addon.key for p in plan_change.target_addon_prices.select_related("addon") if p.addon_id}
    active = (
        Trial.objects.for_tenant(tenant).filter(account=account, state=TrialState.ACTIVE).values_list("pk", flat=True)
    )
    converted = []
    now = timezone.now()
    for trial_id in list(active):
        trial = lock_trial(tenant, trial_id)
        if trial.state != TrialState.ACTIVE:
            continue
        if trial.target_kind == "tier":
            try:
                target = resolve_target(tenant, target_kind="tier", target_key=trial.target_key)
            except InvalidInput:
                continue
            held = (
                target_tier is not None
                and target_tier.product_id == target.product_id
                and target_tier.rank >= target.rank
            )
        else:
            held = trial.target_key in addon_keys
        if not held:
            continue
        trial.state, trial.converted_at = TrialState.CONVERTED, now
        trial.save(update_fields=["state", "converted_at"])
        record_audit(
            tenant,
            actor="system",
            action="trial.converted",
            obj=trial,
            after={"plan_change": plan_change.pk, "grant_ends_at": trial.grant.ends_at.isoformat()},
        )
        converted.append(trial)
    return converted
