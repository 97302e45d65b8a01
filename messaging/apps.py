from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"

    def ready(self) -> None:
        from accounts import rls

        # A provider's bounce webhook names the message by the provider's id before any tenant is known.
        rls.register_tenant_lookup("messaging.Message", "provider_message_id")
        try:
            from anymail.signals import tracking
        except ImportError:  # anymail is the way to a provider; without it, the signed endpoint remains
            return
        from messaging.receivers import on_tracking

        tracking.connect(on_tracking, dispatch_uid="messaging-anymail-tracking")
