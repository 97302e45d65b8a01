"""One date style on every page, "1 Dec 2026, 14:05", in the tenant's time zone (config/formats)."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime

import pytest
from django.utils import timezone

from accounts.models import AuditEntry
from accounts.services import record_audit
from catalog.admin_display import local_date, local_datetime

pytestmark = pytest.mark.django_db

INSTANT = datetime(2026, 12, 1, 13, 5, tzinfo=UTC)


def test_dates_and_times_read_the_same_way_in_the_tenants_zone():
    with timezone.override(zoneinfo.ZoneInfo("Europe/Berlin")):
        assert local_datetime(INSTANT) == "1 Dec 2026, 14:05"
        assert local_date(INSTANT) == "1 Dec 2026"


def test_an_audit_entrys_title_is_in_the_tenants_zone_not_utc(world_a):
    entry = record_audit(world_a.tenant, actor="test", action="thing.done")
    AuditEntry.objects.filter(pk=entry.pk).update(created_at=INSTANT)
    entry.refresh_from_db()
    with timezone.override(zoneinfo.ZoneInfo("America/New_York")):
        assert str(entry).startswith("1 Dec 2026, 08:05 test: thing.done")


def test_the_admin_shows_a_published_date_in_the_one_style(world_a, full_a):
    from catalog.models import Tier

    Tier.objects.filter(pk=full_a.team.pk).update(published_at=INSTANT)
    world_a.tenant.time_zone = "Europe/Berlin"
    world_a.tenant.save(update_fields=["time_zone"])
    html = world_a.staff_client("product_manager").get(f"/admin/catalog/tier/{full_a.team.pk}/change/").content.decode()
    assert "published 1 Dec 2026, 14:05" in html
