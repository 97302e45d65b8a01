"""Reads for tenants, staff, API keys and customer accounts."""

from __future__ import annotations

import hmac

from django.db.models import QuerySet

from accounts.errors import NotFound
from accounts.models import ApiKey, AuditEntry, Contact, CustomerAccount, Membership, Tenant, User
from accounts.tenancy import lookup_tenant_ids, tenant_context


def get_tenant_by_slug(slug: str) -> Tenant:
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        raise NotFound(f"No tenant {slug!r}.")
    return tenant


def memberships_for_user(user: User) -> QuerySet[Membership]:
    return Membership.objects.accepted().filter(user=user).select_related("tenant").order_by("tenant__name")


def membership_for(user: User, tenant: Tenant | None) -> Membership | None:
    if tenant is None or not getattr(user, "is_authenticated", False):
        return None
    return Membership.objects.accepted().filter(user=user, tenant=tenant).first()


# API-key prefix -> the tenant that owns it, remembered per process so a warm API call makes one query
# (the key, read inside its tenant) instead of two. Only a hint about where to look, never an answer:
# the key row is still read under row-level security in that tenant and its secret compared, so a
# revoked or deleted key is refused at once. A prefix is unique across tenants and a key never moves
# to another tenant (`ApiKey.tenant` is not editable); a miss drops the hint and asks the database.
_KEY_TENANTS: dict[str, int] = {}
_KEY_TENANTS_MAX = 10_000


def _tenant_of_key_prefix(prefix: str) -> int | None:
    tenant_ids = lookup_tenant_ids(ApiKey, "prefix", prefix)
    return tenant_ids[0] if len(tenant_ids) == 1 else None


def _read_key(tenant_id: int, prefix: str) -> ApiKey | None:
    with tenant_context(tenant_id):
        return next(iter(ApiKey.objects.for_tenant(tenant_id).select_related("tenant").filter(prefix=prefix)[:1]), None)


def find_api_key(presented: str) -> ApiKey | None:
    """The active key matching a presented secret, or None. Constant-time compare."""
    from accounts.services import hash_api_secret

    parts = presented.split("_")
    if len(parts) < 3 or parts[0] != "tw":
        return None
    prefix = parts[1]
    # ApiKey is tenant-owned (row-level security): the prefix names the tenant, then read inside it.
    remembered = _KEY_TENANTS.get(prefix)
    key = _read_key(remembered, prefix) if remembered is not None else None
    if key is None:
        _KEY_TENANTS.pop(prefix, None)
        tenant_id = _tenant_of_key_prefix(prefix)
        if tenant_id is None or tenant_id == remembered:
            return None
        key = _read_key(tenant_id, prefix)
    if key is None or not hmac.compare_digest(key.hashed_secret, hash_api_secret(presented)):
        return None
    if remembered != key.tenant_id:
        if len(_KEY_TENANTS) >= _KEY_TENANTS_MAX:
            _KEY_TENANTS.clear()
        _KEY_TENANTS[prefix] = key.tenant_id
    return key


def list_customer_accounts(
    tenant: Tenant, *, lifecycle_stage: str | None = None, segment: str | None = None, search: str | None = None
) -> QuerySet[CustomerAccount]:
    qs = CustomerAccount.objects.for_tenant(tenant).select_related("assigned_csm").order_by("name", "id")
    if lifecycle_stage:
        qs = qs.filter(lifecycle_stage=lifecycle_stage)
    if segment:
        qs = qs.filter(segment=segment)
    if search:
        qs = qs.filter(name__icontains=search) | qs.filter(external_id__icontains=search)
    return qs


def get_account_for_tenant(tenant: Tenant, external_id: str) -> CustomerAccount:
    account = (
        CustomerAccount.objects.for_tenant(tenant)
        .select_related("assigned_csm")
        .filter(external_id=external_id)
        .first()
    )
    if account is None:
        raise NotFound(f"No account {external_id!r}.")
    return account


def get_account_by_id(tenant: Tenant, account_id: int) -> CustomerAccount:
    account = CustomerAccount.objects.for_tenant(tenant).filter(pk=account_id).first()
    if account is None:
        raise NotFound(f"No account {account_id}.")
    return account


def list_contacts(tenant: Tenant, *, account: CustomerAccount) -> QuerySet[Contact]:
    return Contact.objects.for_tenant(tenant).filter(account=account).order_by("email")


def list_audit_entries(
    tenant: Tenant, *, object_type: str | None = None, object_id: str | None = None
) -> QuerySet[AuditEntry]:
    qs = AuditEntry.objects.for_tenant(tenant)
    if object_type:
        qs = qs.filter(object_type=object_type)
    if object_id:
        qs = qs.filter(object_id=object_id)
    return qs
