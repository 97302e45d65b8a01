"""A tenant's Stripe keys (encrypted at rest) and the client built from them."""

from __future__ import annotations

import re

from django.db import transaction

from accounts.models import Tenant
from accounts.services import Actor, record_audit
from accounts.tenancy import each_tenant, tenant_context
from billing import crypto
from billing.errors import BillingErrorCode, InvalidInput
from billing.models import StripeAccount
from billing.stripe_client import StripeGateway, gateway_for

PUBLISHABLE_KEY = re.compile(r"pk_[A-Za-z0-9_]{1,250}")


@transaction.atomic
def save_stripe_keys(
    tenant: Tenant,
    *,
    actor: Actor,
    secret_key: str | None = None,
    webhook_secret: str | None = None,
    publishable_key: str | None = None,
    downgrade_prorated_credit: bool | None = None,
) -> StripeAccount:
    """Store (or replace) the tenant's keys. Empty values keep the stored secret; nothing is ever shown back."""
    errors: dict[str, list[str]] = {}
    if secret_key and not secret_key.startswith(("sk_", "rk_")):
        errors["secret_key"] = ["A Stripe secret key starts with sk_ (or rk_ for a restricted key)."]
    if webhook_secret and not webhook_secret.startswith("whsec_"):
        errors["webhook_secret"] = ["A webhook signing secret starts with whsec_."]
    publishable_key = (publishable_key or "").strip()
    if publishable_key and not PUBLISHABLE_KEY.fullmatch(publishable_key):
        errors["publishable_key"] = ["A Stripe publishable key starts with pk_."]
    if errors:
        raise InvalidInput("Invalid Stripe keys.", details=errors)
    account, _ = StripeAccount.objects.select_for_update().get_or_create(tenant=tenant)
    changed: list[str] = []
    if secret_key:
        account.secret_key_encrypted = crypto.encrypt_secret(secret_key.strip())
        account.secret_key_hint = crypto.hint(secret_key.strip())
        changed.append("secret_key")
    if webhook_secret:
        account.webhook_secret_encrypted = crypto.encrypt_secret(webhook_secret.strip())
        account.webhook_secret_hint = crypto.hint(webhook_secret.strip())
        changed.append("webhook_secret")
    if publishable_key and publishable_key != account.publishable_key:
        account.publishable_key = publishable_key
        changed.append("publishable_key")
    if downgrade_prorated_credit is not None and downgrade_prorated_credit != account.downgrade_prorated_credit:
        account.downgrade_prorated_credit = downgrade_prorated_credit
        changed.append("downgrade_prorated_credit")
    account.save()
    if changed:
        # The audit log names what changed, never the secrets themselves.
        record_audit(
            tenant,
            actor=actor,
            action="stripe_settings.updated",
            obj=account,
            after={
                "changed": changed,
                "secret_key_hint": account.secret_key_hint,
                "webhook_secret_hint": account.webhook_secret_hint,
            },
        )
    return account


def _configured(tenant: Tenant) -> StripeAccount:
    account = StripeAccount.objects.for_tenant(tenant).first()
    if account is None or not account.secret_key_encrypted:
        raise InvalidInput("This tenant has no Stripe keys yet.", code=BillingErrorCode.STRIPE_NOT_CONFIGURED)
    return account


def stripe_for(tenant: Tenant) -> StripeGateway:
    """The tenant's one Stripe client."""
    account = _configured(tenant)
    try:
        secret = crypto.decrypt_secret(account.secret_key_encrypted)
    except crypto.SecretUnreadable as exc:
        raise InvalidInput(
            "The stored Stripe key cannot be decrypted with the configured keys.",
            code=BillingErrorCode.SECRET_UNREADABLE,
        ) from exc
    return gateway_for(tenant.pk, secret)


def webhook_secret_for(tenant: Tenant) -> str | None:
    account = StripeAccount.objects.for_tenant(tenant).first()
    if account is None or not account.webhook_secret_encrypted:
        return None
    try:
        return crypto.decrypt_secret(account.webhook_secret_encrypted)
    except crypto.SecretUnreadable:
        return None


def rotate_stripe_secrets() -> int:
    """Re-encrypt every stored secret under the newest key. Returns how many rows were rewritten."""
    count = 0
    # Tenant by tenant: under row-level security `.all()` outside a tenant would see (and rotate) nothing.
    accounts = [a for tenant in each_tenant() for a in StripeAccount.objects.for_tenant(tenant).only("pk", "tenant_id")]
    for account in accounts:
        with tenant_context(account.tenant_id), transaction.atomic():
            locked = StripeAccount.objects.select_for_update().get(pk=account.pk)
            for field in ("secret_key_encrypted", "webhook_secret_encrypted"):
                value = getattr(locked, field)
                if value:
                    setattr(locked, field, crypto.rotate_secret(value))
            locked.save(update_fields=["secret_key_encrypted", "webhook_secret_encrypted", "updated_at"])
            count += 1
    return count
