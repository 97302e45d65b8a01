from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save, pre_save


class UsageConfig(AppConfig):
    name = "usage"

    def ready(self) -> None:
        from accounts.models import CustomerAccount
        from accounts.rls import register_owner_function
        from billing.signals import license_changed
        from catalog.models import Meter
        from usage import receivers
        from usage.partitions import CREATE_PARTITION_FUNCTION, CREATE_PARTITION_SQL

        # The app role may ask the owner for next month's event partition (created by migrate).
        register_owner_function(CREATE_PARTITION_FUNCTION, CREATE_PARTITION_SQL)
        # Billing sends it on commit for every licence or grant change: cached plans must go.
        license_changed.connect(receivers.on_license_changed, dispatch_uid="usage.on_license_changed")
        # Rollups only exist for meters known at ingest time; a new or changed meter is rebuilt.
        post_save.connect(receivers.on_meter_saved, sender=Meter, dispatch_uid="usage.on_meter_saved")
        # Answers are cached by external id: deleting or editing an account must drop them.
        pre_save.connect(
            receivers.remember_external_id, sender=CustomerAccount, dispatch_uid="usage.remember_external_id"
        )
        post_save.connect(
            receivers.on_account_saved_or_deleted, sender=CustomerAccount, dispatch_uid="usage.on_account_saved"
        )
        post_delete.connect(
            receivers.on_account_saved_or_deleted, sender=CustomerAccount, dispatch_uid="usage.on_account_deleted"
        )
