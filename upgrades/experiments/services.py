"""Experiment governance: draft (edited) -> running (started by a second person) -> stopped -> rolled out.

Only drafts are edited. Whoever created a draft may not start it (four eyes; owners may, and the demo's
system actor). Stopping freezes assignment (no new accounts); rolling out a variant records it as the
winner, and from then on the offer engine applies that variant to every new offer of the tenant (the
hook in assignment.py), with no control group. Every write is validated and audited.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Capability, Membership, Role, Tenant, User
from accounts.services import Actor, actor_label, record_audit, snapshot
from upgrades.experiments.models import CONTROL, Experiment, ExperimentState
from upgrades.offers.errors import Conflict, InvalidInput, OffersErrorCode, PermissionDenied

EDITABLE = ("name", "hypothesis", "variants", "control_percent", "signal_kinds", "expected_monthly_accounts",
            "baseline_conversion_percent", "planned_days")  # fmt: skip
CHANNELS = ("email", "in_app", "csm")
KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,29}$")
MAX_VARIANTS = 6


def _require(tenant: Tenant, actor: Actor, doing: str) -> None:
    if not isinstance(actor, User):
        return  # system actors (the demo seed, tests' fixtures) act as the platform
    if actor.is_superuser:
        return
    membership = Membership.objects.for_tenant(tenant).filter(user=actor).first()
    if membership is None or not membership.can(Capability.EDIT_RULES):
        label = Capability(Capability.EDIT_RULES).label
        raise PermissionDenied(f"You may not {doing}: that needs the '{label}' permission.",
                               code=OffersErrorCode.NO_CAPABILITY)  # fmt: skip


def _is_owner(tenant: Tenant, actor: Actor) -> bool:
    if not isinstance(actor, User):
        return True
    return actor.is_superuser or Membership.objects.for_tenant(tenant).filter(user=actor, role=Role.OWNER).exists()


def _bad(field: str, reason: str) -> InvalidInput:
    return InvalidInput(reason, code=OffersErrorCode.INVALID, details={"field": field, "reason": reason})


def validate_variants(tenant: Tenant, variants: Any) -> list[dict]:
    """Each arm: key, weight >= 1, and what it changes: template_variant, discount_variant (one of the live
    offer settings' variants, so within policy), anchor (on/off), channel, trial_days (1..90)."""
    from upgrades.offers.selectors import get_live_settings

    if not isinstance(variants, list) or not variants:
        raise _bad("variants", "An experiment needs at least one variant.")
    if len(variants) > MAX_VARIANTS:
        raise _bad("variants", f"At most {MAX_VARIANTS} variants.")
    live = get_live_settings(tenant)
    discount_keys = {str(v.get("key")) for v in (live.discount_variants if live else [])}
    clean, seen = [], set()
    for i, raw in enumerate(variants):
        if not isinstance(raw, dict):
            raise _bad(f"variants[{i}]", "Each variant is an object.")
        key = str(raw.get("key", "")).strip()
        if not KEY.match(key) or key == CONTROL:
            raise _bad(f"variants[{i}].key", "A key is lower-case letters, digits, - or _ (not 'control').")
        if key in seen:
            raise _bad(f"variants[{i}].key", f"The key '{key}' is used twice.")
        seen.add(key)
        try:
            weight = int(raw.get("weight", 1))
        except (TypeError, ValueError):
            raise _bad(f"variants[{i}].weight", "The weight is a whole number.") from None
        if not 1 <= weight <= 100:
            raise _bad(f"variants[{i}].weight", "The weight is between 1 and 100.")
        item: dict[str, Any] = {"key": key, "weight": weight}
        discount = str(raw.get("discount_variant") or "")
        if discount and discount not in discount_keys:
            raise _bad(f"variants[{i}].discount_variant",
                       f"'{discount}' is not a discount variant of the live offer settings.")  # fmt: skip
        item["discount_variant"] = discount
        item["template_variant"] = str(raw.get("template_variant") or "")[:40]
        if "anchor" in raw and not isinstance(raw["anchor"], bool):
            raise _bad(f"variants[{i}].anchor", "The anchor is on (true) or off (false).")
        item["anchor"] = raw.get("anchor", True)
        channel = str(raw.get("channel") or "email")
        if channel not in CHANNELS:
            raise _bad(f"variants[{i}].channel", f"The channel is one of {', '.join(CHANNELS)}.")
        item["channel"] = channel
        if raw.get("trial_days") not in (None, ""):
            try:
                days = int(raw["trial_days"])
            except (TypeError, ValueError):
                raise _bad(f"variants[{i}].trial_days", "Trial days is a whole number.") from None
            if not 1 <= days <= 90:
                raise _bad(f"variants[{i}].trial_days", "Trial days is between 1 and 90.")
            item["trial_days"] = days
        clean.append(item)
    return clean


def _clean(tenant: Tenant, fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise _bad(sorted(unknown)[0], "This field cannot be set.")
    out = dict(fields)
    if "name" in out:
        out["name"] = str(out["name"] or "").strip()
        if not out["name"] or len(out["name"]) > 120:
            raise _bad("name", "A name of 1 to 120 characters.")
    if "hypothesis" in out:
        out["hypothesis"] = str(out["hypothesis"] or "")[:1000]
    if "variants" in out:
        out["variants"] = validate_variants(tenant, out["variants"])
    for name, low, high in (("control_percent", 1, 90), ("expected_monthly_accounts", 1, 10_000_000),
                            ("planned_days", 1, 730)):  # fmt: skip
        if name in out:
            try:
                out[name] = int(out[name])
            except (TypeError, ValueError):
                raise _bad(name, "A whole number.") from None
            if not low <= out[name] <= high:
                raise _bad(name, f"Between {low} and {high}.")
    if "baseline_conversion_percent" in out:
        try:
            value = Decimal(str(out["baseline_conversion_percent"]))
        except InvalidOperation:
            raise _bad("baseline_conversion_percent", "A number of percent.") from None
        if not Decimal("0.1") <= value <= Decimal("90"):
            raise _bad("baseline_conversion_percent", "Between 0.1 and 90 percent.")
        out["baseline_conversion_percent"] = value
    kinds = out.get("signal_kinds", [])
    if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
        raise _bad("signal_kinds", "A list of signal kinds.")
    return out


def create_experiment(tenant: Tenant, *, actor: Actor, **fields: Any) -> Experiment:
    _require(tenant, actor, "create experiments")
    fields.setdefault("name", "")
    clean = _clean(tenant, fields)
    if "variants" not in clean:
        raise _bad("variants", "An experiment needs at least one variant.")
    experiment = Experiment(tenant=tenant, created_by=actor if isinstance(actor, User) else None,
                            created_by_label=actor_label(actor)[:200], **clean)  # fmt: skip
    with transaction.atomic():
        experiment.save()
        record_audit(tenant, actor=actor, action="experiment.created", obj=experiment,
                     after=snapshot(experiment, EDITABLE))  # fmt: skip
    return experiment


def _locked(tenant: Tenant, experiment: Experiment) -> Experiment:
    return Experiment.objects.for_tenant(tenant).select_for_update().get(pk=experiment.pk)


def update_experiment(tenant: Tenant, *, experiment: Experiment, actor: Actor, **fields: Any) -> Experiment:
    _require(tenant, actor, "edit experiments")
    clean = _clean(tenant, fields)
    with transaction.atomic():
        row = _locked(tenant, experiment)
        if row.state != ExperimentState.DRAFT:
            raise Conflict("Only a draft experiment is edited.", code=OffersErrorCode.NOT_DRAFT)
        before = snapshot(row, EDITABLE)
        for name, value in clean.items():
            setattr(row, name, value)
        row.save()
        record_audit(tenant, actor=actor, action="experiment.updated", obj=row, before=before,
                     after=snapshot(row, EDITABLE))  # fmt: skip
    return row


def start_experiment(tenant: Tenant, *, experiment: Experiment, actor: Actor) -> Experiment:
    _require(tenant, actor, "start experiments")
    with transaction.atomic():
        row = _locked(tenant, experiment)
        if row.state != ExperimentState.DRAFT:
            raise Conflict("Only a draft experiment is started.", code=OffersErrorCode.WRONG_STATE)
        if isinstance(actor, User) and row.created_by_id == actor.pk and not _is_owner(tenant, actor):
            raise PermissionDenied("Someone other than its author starts an experiment.",
                                   code=OffersErrorCode.FOUR_EYES)  # fmt: skip
        validate_variants(tenant, row.variants)
        row.state, row.started_at = ExperimentState.RUNNING, timezone.now()
        row.started_by = actor if isinstance(actor, User) else None
        row.save()
        record_audit(tenant, actor=actor, action="experiment.started", obj=row, after={"state": row.state})
    return row


def stop_experiment(tenant: Tenant, *, experiment: Experiment, actor: Actor) -> Experiment:
    _require(tenant, actor, "stop experiments")
    with transaction.atomic():
        row = _locked(tenant, experiment)
        if row.state not in (ExperimentState.DRAFT, ExperimentState.RUNNING):
            raise Conflict("The experiment is already stopped.", code=OffersErrorCode.WRONG_STATE)
        row.state, row.stopped_at = ExperimentState.STOPPED, timezone.now()
        row.stopped_by = actor if isinstance(actor, User) else None
        row.save()
        record_audit(tenant, actor=actor, action="experiment.stopped", obj=row, after={"state": row.state})
    return row


def roll_out_variant(tenant: Tenant, *, experiment: Experiment, variant_key: str, actor: Actor) -> Experiment:
    """The winner becomes the default: every new offer is built with it (no control group any more)."""
    _require(tenant, actor, "roll out experiments")
    with transaction.atomic():
        row = _locked(tenant, experiment)
        if row.state != ExperimentState.STOPPED:
            raise Conflict("Stop the experiment before rolling out a variant.", code=OffersErrorCode.WRONG_STATE)
        variant = next((v for v in row.variants if v.get("key") == variant_key), None)
        if variant is None:
            raise _bad("variant", f"'{variant_key}' is not a variant of this experiment.")
        validate_variants(tenant, [variant])  # the discount variant must still be in the live settings
        now = timezone.now()
        # One rolled-out default per tenant: an earlier rollout is superseded (back to stopped).
        for earlier in (
            Experiment.objects.for_tenant(tenant).filter(state=ExperimentState.ROLLED_OUT).exclude(pk=row.pk)
        ):
            earlier.state = ExperimentState.STOPPED
            earlier.save(update_fields=["state", "updated_at"])
            record_audit(tenant, actor=actor, action="experiment.superseded", obj=earlier, after={"by": row.pk})
        row.state, row.winner, row.rolled_out_at = ExperimentState.ROLLED_OUT, variant_key, now
        row.rolled_out_by = actor if isinstance(actor, User) else None
        row.rollout = {"variant": variant, "applies_to": "new offers", "at": now.isoformat()}
        row.save()
        record_audit(tenant, actor=actor, action="experiment.rolled_out", obj=row, after={"winner": variant_key})
    return row
