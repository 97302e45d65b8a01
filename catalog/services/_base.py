"""Shared pieces of the catalog services: permission checks, audit snapshots, locking."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db.models import Model

from accounts.models import AuditEntry, Capability, Membership, Role, Tenant, User
from accounts.services import Actor, record_audit, snapshot
from accounts.services import audited_as as audited_as  # re-exported: catalog.services.audited_as
from catalog.errors import CatalogErrorCode, Conflict, InvalidInput, PermissionDenied
from catalog.models import (
    AddOn,
    Bundle,
    DiscountPolicy,
    GovernanceState,
    Governed,
    Tier,
)

G = TypeVar("G", bound=Governed)

GOVERNANCE_FIELDS = (
    "state",
    "version",
    "created_by_id",
    "submitted_by_id",
    "submitted_at",
    "approved_by_id",
    "approved_at",
    "approval_comment",
    "published_at",
    "retired_at",
    "contributor_ids",
)
M2M_FIELDS: dict[type[Model], tuple[str, ...]] = {AddOn: ("compatible_tiers",), Bundle: ("addons",)}
# Fields a draft may set through create_draft/update_draft, per model.
EDITABLE_FIELDS: dict[type[Model], tuple[str, ...]] = {
    Tier: (
        "key",
        "product",
        "name",
        "rank",
        "tagline",
        "outcomes",
        "who_for",
        "is_public",
        "is_free",
        "default_trial_days",
        "is_anchor",
        "currency",
    ),
    AddOn: ("key", "product", "name", "description", "currency", "compatible_tiers"),
    Bundle: ("key", "name", "tier", "addons", "audience_kind", "audience", "description", "scenarios"),
    DiscountPolicy: (
        "key",
        "name",
        "term_rules",
        "volume_rules",
        "combination",
        "cap_percent",
        "loyalty_percent",
        "exception_approver_role",
    ),
}


@dataclass
class TransitionResult:
    """The item after a transition, and what the person should know (e.g. licences still on a retired tier)."""

    obj: Governed
    warnings: list[str] = field(default_factory=list)
    retired: list[Governed] = field(default_factory=list)


# --- Audit -----------------------------------------------------------------------------------


def _audit(tenant: Tenant, *, actor: Actor, **fields: Any) -> AuditEntry:
    """accounts.services.record_audit (which honours `audited_as`)."""
    return record_audit(tenant, actor=actor, **fields)


# --- Helpers ---------------------------------------------------------------------------------


def _membership(tenant: Tenant, actor: User) -> Membership | None:
    if not isinstance(actor, User):
        return None
    return Membership.objects.for_tenant(tenant).filter(user=actor).first()


def _require(tenant: Tenant, actor: User, capability: str, doing: str) -> Membership | None:
    """The actor's membership, after checking it carries `capability`. Platform superusers pass."""
    if isinstance(actor, User) and actor.is_superuser:
        return _membership(tenant, actor)
    membership = _membership(tenant, actor)
    if membership is None or not membership.can(capability):
        raise PermissionDenied(
            f"You may not {doing}: that needs the '{Capability(capability).label}' permission.",
            code=CatalogErrorCode.NO_CAPABILITY,
        )
    return membership


def _is_owner(actor: User, membership: Membership | None) -> bool:
    return (isinstance(actor, User) and actor.is_superuser) or (
        membership is not None and membership.role == Role.OWNER
    )


def _label(obj: Governed) -> str:
    return f"{obj._meta.verbose_name} {obj.name!s} v{obj.version}"


def _action(obj: Model, verb: str) -> str:
    return f"{obj._meta.model_name}.{verb}"


def _audit_fields(obj: Model) -> list[str]:
    return [f.attname for f in obj._meta.concrete_fields if f.attname not in ("id", "tenant_id")]


def _snap(obj: Model) -> dict[str, Any]:
    data = snapshot(obj, _audit_fields(obj))
    for name in M2M_FIELDS.get(type(obj), ()):
        if obj.pk is not None:
            data[name] = sorted(getattr(obj, name).values_list("pk", flat=True))
    return data


def _diff(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    return {k: before.get(k) for k in sorted(changed)}, {k: after.get(k) for k in sorted(changed)}


def _clean(obj: Model, *, exclude: Iterable[str] = ()) -> None:
    try:
        obj.full_clean(exclude=list(exclude))
    except ValidationError as exc:
        raise InvalidInput(
            _first_message(exc.message_dict), code=CatalogErrorCode.INVALID, details=exc.message_dict
        ) from exc


def _first_message(details: dict[str, list[str]]) -> str:
    for name, messages in details.items():
        if messages:
            return messages[0] if name == "__all__" else f"{name.replace('_', ' ').capitalize()}: {messages[0]}"
    return "Invalid input."


def _add_contributor(obj: Governed, actor: User) -> None:
    if isinstance(actor, User) and actor.pk not in obj.contributor_ids:
        obj.contributor_ids = [*obj.contributor_ids, actor.pk]


def _lock(obj: G) -> G:
    """Re-read the row under a lock so two transitions of one item serialise."""
    return type(obj).objects.select_for_update().get(pk=obj.pk, tenant_id=obj.tenant_id)


def _require_draft(obj: Governed, doing: str = "edit") -> None:
    if obj.state != GovernanceState.DRAFT:
        hint = {
            GovernanceState.PUBLISHED: " Revise it to start a new draft version.",
            GovernanceState.AWAITING_APPROVAL: " Return it to draft first.",
        }.get(obj.state, "")
        raise Conflict(
            f"{_label(obj).capitalize()} is {obj.get_state_display().lower()}, so you cannot {doing} it." + hint,
            code=CatalogErrorCode.NOT_DRAFT,
            details={"state": obj.state},
        )


def _same_tenant(tenant: Tenant, field_name: str, value: Any) -> None:
    values = value if isinstance(value, list | tuple | set) else [value]
    for item in values:
        if item is not None and getattr(item, "tenant_id", tenant.pk) != tenant.pk:
            raise InvalidInput(
                "Invalid input.",
                code=CatalogErrorCode.INVALID,
                details={field_name: ["Pick an item of this workspace."]},
            )
