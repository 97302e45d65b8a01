"""The beat sweeps work as the production app role, under row-level security (PostgreSQL): they loop over the
tenants, each inside its own tenant context, so no tenant's due rows are invisible to them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import LicenseGrant, StripeWebhookEvent, WebhookEventState
from billing.services import licenses, webhooks
from tests.billing.factories import make_catalog
from tests.tenancy.conftest import APP_PASSWORD, APP_ROLE, app_role, connect_as  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration


def test_grant_expiry_and_the_webhook_sweep_reach_every_tenant_as_the_app_role(two_tenants, connect_as):  # noqa: F811
    now = timezone.now()
    for world in two_tenants:
        catalog = make_catalog(world.tenant)
        LicenseGrant.objects.create(
            tenant=world.tenant,
            account=world.account,
            kind="trial",
            addon=catalog.addons["sso"],
            starts_at=now - timedelta(days=14),
            ends_at=now - timedelta(minutes=1),
        )
        StripeWebhookEvent.objects.create(
            tenant=world.tenant,
            event_id="evt_lost",
            event_type="product.created",
            object_id="prod_1",
            stripe_created=now,
            payload={},
            received_at=now - timedelta(minutes=10),
        )
    connect_as.switch(USER=APP_ROLE, PASSWORD=APP_PASSWORD)
    assert not LicenseGrant.objects.exists()  # no tenant set: nothing visible

    assert licenses.expire_grants(now=now) == 2
    assert webhooks.retry_webhook_events(now=now) == {"retried": 2, "gave_up": 0}

    connect_as.restore()
    assert LicenseGrant.objects.filter(ended_at__isnull=False).count() == 2
    assert set(StripeWebhookEvent.objects.values_list("state", flat=True)) == {WebhookEventState.IGNORED}
