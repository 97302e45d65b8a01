from django.apps import AppConfig


class UpgradesConfig(AppConfig):
    name = "upgrades"

    def ready(self) -> None:
        # The admin index (accounts.admin_site) shows the staff workspace; accounts may not import
        # upgrades, so upgrades hands it the context provider here.
        from accounts.admin_site import register_index_context
        from upgrades.admin_index import workspace_context
        from upgrades.offers import receivers as offer_receivers
        from upgrades.rules import receivers

        register_index_context(workspace_context)
        # A portal link's token finds its tenant before any tenant is known (upgrades.portal.tokens).
        from accounts import rls

        rls.register_tenant_lookup("upgrades.PortalSession", "token_hash")
        from upgrades.offers import documents
        from upgrades.offers.services import messages as offer_messages
        from upgrades.portal.tokens import document_link, offer_link

        offer_messages.OFFER_LINK_BUILDERS[:] = [offer_link]
        documents.DOCUMENT_LINK_BUILDERS[:] = [document_link]
        # Ingest marks accounts dirty for the trigger rules (usage never imports upgrades).
        receivers.connect()
        # A settled plan change fulfils the offer that asked for it (billing never imports upgrades).
        offer_receivers.connect()
        # ... and the console proposal that asked for it (reference proposal:<id>).
        from upgrades.console import receivers as console_receivers

        console_receivers.connect()
        # The portal shows and acts on shared proposals through the offers layer's registry (issue 17).
        from upgrades.console.portal_documents import KIND, PROVIDER
        from upgrades.offers.documents import register_customer_document_provider

        register_customer_document_provider(KIND, PROVIDER)
        # Experiments assign accounts when the offer engine builds (offers never import experiments).
        from upgrades.experiments.assignment import (
            channel_for_offer,
            offer_hook,
            template_variant_for_offer,
            trial_days_for_offer,
        )
        from upgrades.offers.services import building, trials

        building.EXPERIMENT_HOOKS[:] = [offer_hook]
        offer_messages.OFFER_TEMPLATE_VARIANTS[:] = [template_variant_for_offer]
        offer_messages.OFFER_CHANNELS[:] = [channel_for_offer]
        trials.TRIAL_DAYS_HOOKS[:] = [trial_days_for_offer]
