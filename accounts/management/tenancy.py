"""Management commands run inside a tenant: `--tenant SLUG` sets the tenant context for the command.

Installed once from AccountsConfig.ready() around BaseCommand.execute, so every command that takes
`--tenant` (create_api_key, evaluate_rules, rebuild_rollups ...) works under row-level security
without each one remembering to. A command acting on many tenants loops with
`accounts.tenancy.each_tenant()` (or `tenant_context(tenant)` per tenant).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    original = BaseCommand.execute

    def execute(self: BaseCommand, *args: Any, **options: Any) -> Any:
        from accounts.models import Tenant
        from accounts.tenancy import activate_tenant, tenant_scope

        with tenant_scope():
            slug = options.get("tenant")
            if isinstance(slug, str) and slug:
                tenant = Tenant.objects.filter(slug=slug).first()
                if tenant is not None:  # else the command says it knows no such tenant
                    activate_tenant(tenant)
            return original(self, *args, **options)

    BaseCommand.execute = execute  # type: ignore[method-assign]
