"""A signal's life after it fires: open -> acted on | dismissed | expired, and nothing else.

- `mark_signal_acted_on`: the offer engine made something of it (`reference` names what, e.g. an offer).
- `dismiss_signal`: a person (or the vendor's backend, through the API) says it is not worth acting on.
- `expire_stale_signals`: open signals older than SIGNAL_EXPIRES_AFTER expire (beat, set-based).

Each move locks the row, checks the state it is in, writes the new one and its audit entry in one
transaction. Repeating the same move (a task or an API call retried) answers the signal as it is and
writes nothing; any other move out of a closed state is a 409.
"""

from __future__ import annotations

import datetime

from django.db import transaction
from django.utils import timezone

from accounts.models import ApiKey, Capability, Membership, Tenant, User
from accounts.services import Actor, actor_label, record_audit, record_audits
from upgrades.rules.errors import Conflict, InvalidInput, NotFound, PermissionDenied, RulesErrorCode
from upgrades.rules.models import Signal, SignalState

SIGNAL_EXPIRES_AFTER = datetime.timedelta(days=30)
LEGAL: dict[str, frozenset[str]] = {
    SignalState.OPEN: frozenset({SignalState.ACTED_ON, SignalState.DISMISSED, SignalState.EXPIRED}),
}
MAX_REASON = 500
MAX_REFERENCE = 200
OFFER_ENGINE = "offer engine"
DISMISS_CAPABILITIES = (Capability.EDIT_RULES, Capability.REVIEW_OFFERS)


def _text(value: object, *, field: str, max_length: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"A {field} is required.", details={field: ["This field is required."]})
    value = value.strip()
    if len(value) > max_length:
        too_long = f"Ensure this field has no more than {max_length} characters."
        raise InvalidInput(f"The {field} is too long.", details={field: [too_long]})
    if "\x00" in value or any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        raise InvalidInput(f"The {field} has characters we cannot store.", details={field: ["Invalid characters."]})
    return value


def _may_dismiss(tenant: Tenant, actor: Actor) -> None:
    if isinstance(actor, ApiKey):
        if actor.tenant_id != tenant.pk:
            raise NotFound("No such signal.")
        return  # the API checked its write scope
    if isinstance(actor, User):
        if actor.is_superuser:
            return
        membership = Membership.objects.for_tenant(tenant).filter(user=actor).first()
        if membership is not None and any(membership.can(c) for c in DISMISS_CAPABILITIES):
            return
    raise PermissionDenied(
        "You may not dismiss signals: that needs the 'Edit trigger rules' or 'Review offers' permission.",
        code=RulesErrorCode.NO_CAPABILITY,
    )


def _move(tenant: Tenant, signal: Signal, *, to: str, actor: Actor, reason: str = "", reference: str = "") -> Signal:
    now = timezone.now()
    with transaction.atomic():
        row = Signal.objects.for_tenant(tenant).select_for_update().filter(pk=signal.pk).first()
        if row is None:
            raise NotFound("No such signal.")
        if row.state == to and row.reference == reference and row.closed_reason == reason:
            return row  # the same move again (a retry): nothing to do
        if to not in LEGAL.get(row.state, frozenset()):
            raise Conflict(
                f"This signal is {row.get_state_display().lower()}; only an open signal can be "
                f"{SignalState(to).label.lower()}.",
                code=RulesErrorCode.WRONG_STATE,
                details={"state": row.state},
            )
        before = {"state": row.state}
        row.state, row.closed_at, row.closed_reason, row.reference = to, now, reason, reference
        row.closed_by = actor_label(actor)[:200] if actor is not None else ""
        row.save(update_fields=["state", "closed_at", "closed_by", "closed_reason", "reference", "updated_at"])
        record_audit(
            tenant,
            actor=actor,
            action=f"signal.{to}",
            obj=row,
            before=before,
            after={"state": to, "reason": reason, "reference": reference},
        )
    return row


def mark_signal_acted_on(tenant: Tenant, *, signal: Signal, reference: str) -> Signal:
    """The offer engine acted on an open signal; `reference` says what it made (e.g. "offer:42")."""
    reference = _text(reference, field="reference", max_length=MAX_REFERENCE)
    return _move(tenant, signal, to=SignalState.ACTED_ON, actor=OFFER_ENGINE, reference=reference)


def _close_open_signals(tenant: Tenant, *, to: str, actor: Actor, references: dict[int, str], reason: str = "") -> int:
    """Set-based `_move` for open signals only: lock them (one query), one UPDATE, one INSERT of audit
    entries. Signals no longer open (a retry, another worker) are left as they are and not counted."""
    from django.db.models import Case, CharField, Value, When

    now = timezone.now()
    label = actor_label(actor)[:200]
    with transaction.atomic():
        rows = list(
            Signal.objects.for_tenant(tenant).select_for_update()
            .filter(pk__in=list(references), state=SignalState.OPEN).order_by("pk")
        )  # fmt: skip
        if not rows:
            return 0
        ids = [r.pk for r in rows]
        reference = Case(*(When(pk=i, then=Value(references[i])) for i in ids), output_field=CharField())
        Signal.objects.for_tenant(tenant).filter(pk__in=ids).update(
            state=to, closed_at=now, closed_by=label, closed_reason=reason, reference=reference, updated_at=now
        )
        record_audits(
            tenant,
            actor=actor,
            entries=[
                (f"signal.{to}", r, {"state": r.state}, {"state": to, "reason": reason, "reference": references[r.pk]})
                for r in rows
            ],
        )
    return len(rows)


def mark_signals_acted_on(tenant: Tenant, *, signal_ids_to_reference: dict[int, str]) -> int:
    """`mark_signal_acted_on` for many open signals in a few statements; returns how many moved."""
    references = {
        int(pk): _text(ref, field="reference", max_length=MAX_REFERENCE) for pk, ref in signal_ids_to_reference.items()
    }
    return _close_open_signals(tenant, to=SignalState.ACTED_ON, actor=OFFER_ENGINE, references=references)


def dismiss_signals_by_engine(tenant: Tenant, *, signal_ids: list[int], reason: str) -> int:
    """The offer engine dismisses open signals it can make nothing of (e.g. "nothing to offer"), so the
    sweep stops queuing them; the system actor needs no capability. Returns how many moved."""
    reason = _text(reason, field="reason", max_length=MAX_REASON)
    references = {int(pk): "" for pk in signal_ids}
    return _close_open_signals(
        tenant, to=SignalState.DISMISSED, actor=OFFER_ENGINE, references=references, reason=reason
    )


def dismiss_signal(tenant: Tenant, *, signal: Signal, actor: Actor, reason: str) -> Signal:
    """Someone judged an open signal not worth acting on, and says why (kept and audited)."""
    _may_dismiss(tenant, actor)
    reason = _text(reason, field="reason", max_length=MAX_REASON)
    return _move(tenant, signal, to=SignalState.DISMISSED, actor=actor, reason=reason)


def expire_stale_signals(tenant: Tenant, *, now: datetime.datetime | None = None) -> int:
    """Open signals created more than SIGNAL_EXPIRES_AFTER before `now` expire: one set-based update
    and one audit entry with the count (none when nothing expired), so a rerun changes nothing."""
    now = now or timezone.now()
    cutoff = now - SIGNAL_EXPIRES_AFTER
    with transaction.atomic():
        n = (
            Signal.objects.for_tenant(tenant)
            .filter(state=SignalState.OPEN, created_at__lt=cutoff)
            .update(
                state=SignalState.EXPIRED,
                closed_at=now,
                closed_by="expiry sweep",
                closed_reason=f"Open for more than {SIGNAL_EXPIRES_AFTER.days} days.",
                updated_at=now,
            )
        )
        if n:
            record_audit(
                tenant,
                actor="expiry sweep",
                action="signal.expired",
                after={"count": n, "created_before": cutoff.isoformat()},
            )
    return n


def has_stale_signals(tenant: Tenant, *, now: datetime.datetime | None = None) -> bool:
    cutoff = (now or timezone.now()) - SIGNAL_EXPIRES_AFTER
    return Signal.objects.for_tenant(tenant).filter(state=SignalState.OPEN, created_at__lt=cutoff).exists()
