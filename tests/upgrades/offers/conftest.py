"""Shared fixtures of the offer and trial tests. Helpers add their own fixtures in their own test modules."""

from __future__ import annotations

import pytest
from django.utils import timezone

from accounts.models import Tenant
from upgrades.offers.models import OfferSettings, SettingsState


def make_live_settings(tenant: Tenant, **fields) -> OfferSettings:
    """Live offer settings as if a PM drafted them and a second person approved them."""
    fields.setdefault("signal_kinds", ["upgrade_opportunity", "trial_candidate", "renewal"])
    version = (
        OfferSettings.objects.for_tenant(tenant).order_by("-version").values_list("version", flat=True).first() or 0
    ) + 1
    now = timezone.now()
    return OfferSettings.objects.create(
        tenant=tenant, version=version, state=SettingsState.LIVE, approved_at=now, live_at=now, **fields
    )


@pytest.fixture
def live_settings(world_a) -> OfferSettings:
    return make_live_settings(world_a.tenant)
