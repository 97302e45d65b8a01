from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        # catalog asks "how many active licences still hold these tiers?" before retiring them.
        from billing.selectors import count_license_holders, mrr_of_license_holders
        from catalog.hooks import register_holder_counter

        register_holder_counter(count_license_holders, mrr=mrr_of_license_holders)
