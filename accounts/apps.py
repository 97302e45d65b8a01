from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class AccountsConfig(AppConfig):
    default = True
    name = "accounts"
    verbose_name = "Tenants and customers"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from accounts import rls
        from accounts.management import tenancy as command_tenancy

        # After every migrate, as the owner: row-level security, policies and the app role's grants.
        post_migrate.connect(rls.on_post_migrate, sender=self, dispatch_uid="tierwise-rls")
        # The invitation page finds its membership by the token's hash before any tenant is known.
        rls.register_tenant_lookup("accounts.Membership", "invitation_token_hash")
        command_tenancy.install()


class TierwiseAdminConfig(admin_apps.AdminConfig):
    default = False
    default_site = "accounts.admin_site.TierwiseAdminSite"
