"""Writes for tenants, staff, API keys, customer accounts and the audit log."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from accounts.errors import AccountsErrorCode, Conflict, InvalidInput
from accounts.models import (
    ApiKey,
    ApiScope,
    AuditEntry,
    Contact,
    CustomerAccount,
    Membership,
    Role,
    Tenant,
    User,
)
from accounts.tenancy import platform_row_context, tenant_context

Actor = User | ApiKey | str | None

API_KEY_PREFIX_BYTES = 6
API_KEY_SECRET_BYTES = 24


# --- Audit ---------------------------------------------------------------------------


def actor_label(actor: Actor) -> str:
    if isinstance(actor, User):
        return actor.email
    if isinstance(actor, ApiKey):
        return f"api-key:{actor.prefix}"
    return actor or "system"


def snapshot(obj: models.Model, fields: Iterable[str] | None = None) -> dict[str, Any]:
    """A JSON-safe picture of a model's concrete fields, for before/after in the audit log."""
    names = list(fields) if fields is not None else [f.attname for f in obj._meta.concrete_fields]
    data = {name: getattr(obj, name) for name in names}
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


# Who the audit log credits instead of the acting user, while set (see `audited_as`).
_audit_actor: ContextVar[str | None] = ContextVar("tierwise_audit_actor", default=None)


@contextmanager
def audited_as(label: str) -> Iterator[None]:
    """Credit every audit entry written inside the block to the system actor `label`.

    For seeding: the demo drafts as pm@ and approves as pm2@ so that four eyes and the models'
    drafted-by / approved-by read like a real workspace, but no person did it, so the audit log must
    not say they did (it says e.g. "demo-seed"). Permission and four-eyes checks still use the user.
    """
    token = _audit_actor.set(label)
    try:
        yield
    finally:
        _audit_actor.reset(token)


def record_audit(
    tenant: Tenant | None,
    *,
    actor: Actor,
    action: str,
    obj: models.Model | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """The one way every app writes to the audit log."""
    actor = _audit_actor.get() or actor
    with platform_row_context(tenant):  # row-level security: a row without a tenant is written outside tenants
        return AuditEntry.objects.create(
            tenant=tenant,
            actor=actor if isinstance(actor, User) else None,
            actor_label=actor_label(actor)[:200],
            action=action,
            object_type=obj._meta.label if obj is not None else "",
            object_id=str(obj.pk) if obj is not None else "",
            object_repr=str(obj)[:200] if obj is not None else "",
            before=json.loads(json.dumps(before, cls=DjangoJSONEncoder)) if before is not None else None,
            after=json.loads(json.dumps(after, cls=DjangoJSONEncoder)) if after is not None else None,
        )


def record_audits(
    tenant: Tenant,
    *,
    actor: Actor,
    entries: Iterable[tuple[str, models.Model | None, Mapping[str, Any] | None, Mapping[str, Any] | None]],
) -> int:
    """Many audit entries of one tenant and actor in one INSERT: each entry is (action, obj, before, after),
    written as `record_audit` writes one. For set-based services (a batch of offers, of signals)."""
    actor = _audit_actor.get() or actor
    label = actor_label(actor)[:200]

    def _json(value: Mapping[str, Any] | None) -> Any:
        return json.loads(json.dumps(value, cls=DjangoJSONEncoder)) if value is not None else None

    rows = [
        AuditEntry(
            tenant=tenant,
            actor=actor if isinstance(actor, User) else None,
            actor_label=label,
            action=action,
            object_type=obj._meta.label if obj is not None else "",
            object_id=str(obj.pk) if obj is not None else "",
            object_repr=str(obj)[:200] if obj is not None else "",
            before=_json(before),
            after=_json(after),
        )
        for action, obj, before, after in entries
    ]
    with platform_row_context(tenant):
        AuditEntry.objects.bulk_create(rows)
    return len(rows)


def _clean(obj: models.Model) -> None:
    try:
        obj.full_clean()
    except ValidationError as exc:
        raise InvalidInput("Invalid input.", details=exc.message_dict) from exc


# --- Tenants and staff ---------------------------------------------------------------


@transaction.atomic
def create_tenant(*, name: str, slug: str, owner_email: str, owner_password: str | None = None) -> tuple[Tenant, User]:
    """A tenant with its first owner. The owner's password is set only when given."""
    if Tenant.objects.filter(slug=slug).exists():
        raise Conflict(f"A tenant with slug {slug!r} already exists.", code=AccountsErrorCode.DUPLICATE_SLUG)
    tenant = Tenant(name=name, slug=slug)
    _clean(tenant)
    tenant.save()
    with tenant_context(tenant):  # row-level security: the new tenant's rows are written inside it
        owner = User.objects.filter(email__iexact=owner_email).first()
        if owner is None:
            owner = User.objects.create_user(owner_email, owner_password)
        Membership.objects.create(tenant=tenant, user=owner, role=Role.OWNER)
        record_audit(tenant, actor="system", action="tenant.created", obj=tenant, after=snapshot(tenant))
    return tenant, owner


# --- API keys ------------------------------------------------------------------------


def hash_api_secret(secret: str) -> str:
    # Keys are 192-bit random: a fast hash is enough and keeps auth off the hot path.
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def create_api_key(tenant: Tenant, *, name: str, scopes: Iterable[str], actor: Actor) -> tuple[ApiKey, str]:
    """Returns the key and its full secret, which is never retrievable again."""
    scopes = sorted(set(scopes))
    unknown = [s for s in scopes if s not in ApiScope.values]
    if unknown or not scopes:
        raise InvalidInput(
            "Scopes must be a non-empty subset of: " + ", ".join(ApiScope.values),
            code=AccountsErrorCode.UNKNOWN_SCOPE,
            details={"scopes": [f"Unknown scope {s!r}." for s in unknown] or ["At least one scope is needed."]},
        )
    prefix = secrets.token_hex(API_KEY_PREFIX_BYTES)
    secret = secrets.token_urlsafe(API_KEY_SECRET_BYTES)
    full = f"tw_{prefix}_{secret}"
    key = ApiKey(
        tenant=tenant,
        name=name,
        prefix=prefix,
        hashed_secret=hash_api_secret(full),
        scopes=scopes,
        created_by=actor if isinstance(actor, User) else None,
    )
    _clean(key)
    key.save()
    record_audit(
        tenant, actor=actor, action="api_key.created", obj=key, after=snapshot(key, ["name", "prefix", "scopes"])
    )
    return key, full


@transaction.atomic
def revoke_api_key(tenant: Tenant, *, api_key: ApiKey, actor: Actor) -> ApiKey:
    if api_key.tenant_id != tenant.pk:
        raise InvalidInput("This key belongs to another tenant.")
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        record_audit(
            tenant, actor=actor, action="api_key.revoked", obj=api_key, after=snapshot(api_key, ["revoked_at"])
        )
    return api_key


def touch_api_key(api_key: ApiKey) -> None:
    """Record last use at most once a minute, so auth does not write on every request."""
    now = timezone.now()
    if api_key.last_used_at is None or (now - api_key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now


# --- Customer accounts ---------------------------------------------------------------

ACCOUNT_FIELDS = (
    "name",
    "industry",
    "size_band",
    "employee_count",
    "segment",
    "territory",
    "lifecycle_stage",
    "assigned_csm",
    "attributes",
)


def _check_csm(tenant: Tenant, csm: User | None) -> None:
    # Membership.objects holds accepted memberships only: someone merely invited is not staff yet.
    if csm is not None and not Membership.objects.for_tenant(tenant).filter(user=csm).exists():
        raise InvalidInput(
            "Invalid input.",
            code=AccountsErrorCode.UNKNOWN_CSM,
            details={"assigned_csm": ["Not a staff member of this tenant."]},
        )


@transaction.atomic
def create_customer_account(
    tenant: Tenant, *, external_id: str, name: str, actor: Actor, **fields: Any
) -> CustomerAccount:
    unknown = set(fields) - set(ACCOUNT_FIELDS)
    if unknown:
        raise TypeError(f"Unknown fields: {sorted(unknown)}")
    _check_csm(tenant, fields.get("assigned_csm"))
    account = CustomerAccount(tenant=tenant, external_id=external_id, name=name, **fields)
    _clean_account(account)
    try:
        with transaction.atomic():
            account.save()
    except IntegrityError as exc:
        raise Conflict(
            f"An account with external id {external_id!r} already exists.",
            code=AccountsErrorCode.DUPLICATE_EXTERNAL_ID,
            details={"external_id": ["Already in use."]},
        ) from exc
    record_audit(tenant, actor=actor, action="account.created", obj=account, after=snapshot(account))
    return account


def _clean_account(account: CustomerAccount) -> None:
    try:
        account.full_clean(validate_constraints=False)
    except ValidationError as exc:
        raise InvalidInput("Invalid input.", details=exc.message_dict) from exc


@transaction.atomic
def update_customer_account(
    tenant: Tenant, *, account: CustomerAccount, actor: Actor, **changes: Any
) -> CustomerAccount:
    unknown = set(changes) - set(ACCOUNT_FIELDS)
    if unknown:
        raise TypeError(f"Unknown fields: {sorted(unknown)}")
    if "assigned_csm" in changes:
        _check_csm(tenant, changes["assigned_csm"])
    account = CustomerAccount.objects.for_tenant(tenant).select_for_update().get(pk=account.pk)
    before = snapshot(account)
    for field, value in changes.items():
        setattr(account, field, value)
    _clean_account(account)
    account.save()
    after = snapshot(account)
    changed = {k for k in after if before.get(k) != after.get(k)} - {"updated_at"}
    if changed:
        record_audit(
            tenant,
            actor=actor,
            action="account.updated",
            obj=account,
            before={k: before[k] for k in changed},
            after={k: after[k] for k in changed},
        )
    return account


@transaction.atomic
def create_contact(
    tenant: Tenant,
    *,
    account: CustomerAccount,
    email: str,
    actor: Actor,
    name: str = "",
    role: str = "",
    marketing_consent: bool = False,
    locale: str = "",
) -> Contact:
    contact = Contact(
        tenant=tenant,
        account=account,
        email=email.strip().lower(),
        name=name,
        role=role,
        marketing_consent=marketing_consent,
        locale=locale.strip(),
    )
    try:
        contact.full_clean(validate_constraints=False)
    except ValidationError as exc:
        raise InvalidInput("Invalid input.", details=exc.message_dict) from exc
    try:
        with transaction.atomic():
            contact.save()
    except IntegrityError as exc:
        raise Conflict(
            "This account already has a contact with that email.",
            code=AccountsErrorCode.DUPLICATE_CONTACT,
            details={"email": ["Already in use."]},
        ) from exc
    record_audit(tenant, actor=actor, action="contact.created", obj=contact, after=snapshot(contact))
    return contact
