"""Reads of trigger rules: signals of an account, rules, preview."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import CustomerAccount, Tenant
from accounts.tenancy import each_tenant
from upgrades.rules.errors import NotFound
from upgrades.rules.models import DirtyAccount, RuleState, Signal, TriggerRule


def list_signals(
    tenant: Tenant, *, account: CustomerAccount | None = None, state: str | None = None
) -> QuerySet[Signal]:
    qs = Signal.objects.for_tenant(tenant).select_related("rule", "account")
    if account is not None:
        qs = qs.filter(account=account)
    if state:
        qs = qs.filter(state=state)
    return qs.order_by("-created_at", "-id")


def get_account_by_external_id(tenant: Tenant, external_id: str) -> CustomerAccount:
    account = CustomerAccount.objects.for_tenant(tenant).filter(external_id=external_id).first()
    if account is None:
        raise NotFound("No such account.")
    return account


def list_rules(tenant: Tenant, *, state: str | None = None) -> QuerySet[TriggerRule]:
    qs = TriggerRule.objects.for_tenant(tenant)
    return qs.filter(state=state) if state else qs


def get_rule_for_tenant(tenant: Tenant, rule_id: int) -> TriggerRule:
    rule = TriggerRule.objects.for_tenant(tenant).filter(pk=rule_id).first()
    if rule is None:
        raise NotFound("No such rule.")
    return rule


def tenants_with_dirty_accounts() -> list[int]:
    """Tenant ids that have dirty accounts; each tenant is read inside its own context (row-level security)."""
    return [t.pk for t in each_tenant() if DirtyAccount.objects.for_tenant(t).exists()]


def tenants_with_live_rules() -> list[int]:
    return [t.pk for t in each_tenant() if TriggerRule.objects.for_tenant(t).filter(state=RuleState.LIVE).exists()]


def tenants_with_stale_signals() -> list[int]:
    from upgrades.rules.services.lifecycle import has_stale_signals

    return [t.pk for t in each_tenant() if has_stale_signals(t)]


def get_signal_for_tenant(tenant: Tenant, signal_id: int) -> Signal:
    signal = Signal.objects.for_tenant(tenant).select_related("rule", "account").filter(pk=signal_id).first()
    if signal is None:
        raise NotFound("No such signal.")
    return signal
