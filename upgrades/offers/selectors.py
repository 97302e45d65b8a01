"""Reads of offers, offer settings and trials. Every read names its tenant."""

from __future__ import annotations

from accounts.models import Tenant
from upgrades.offers.models import OfferSettings, SettingsState


def get_live_settings(tenant: Tenant | int) -> OfferSettings | None:
    """The one live version of the tenant's offer settings, or None: then no offer is made or sent."""
    return OfferSettings.objects.for_tenant(tenant).filter(state=SettingsState.LIVE).first()
