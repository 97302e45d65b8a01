"""/analytics/: every staff role reads it, from the cached snapshot; CSV equals the page; tenants are walls."""

from __future__ import annotations

import csv
import io
import re
from html import unescape

import pytest
from django.core.cache import cache

from accounts.models import Role
from accounts.tenancy import tenant_context
from tests.upgrades.analytics.test_api_revenue import record
from upgrades.analytics.snapshot import cache_key, refresh_snapshot
from upgrades.analytics.tasks import refresh_dashboards

pytestmark = pytest.mark.django_db
URL = "/analytics/"


@pytest.fixture(autouse=True)
def _fresh_cache(world_a, world_b):
    for world in (world_a, world_b):
        cache.delete(cache_key(world.tenant.pk))
    yield
    for world in (world_a, world_b):
        cache.delete(cache_key(world.tenant.pk))


def page_table(html: str, name: str) -> list[list[str]]:
    section = html.split(f'data-testid="table-{name}"', 1)[1].split("</table>", 1)[0]
    rows = []
    for tr in re.findall(r"<tr>(.*?)</tr>", section, flags=re.S):
        cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", tr, flags=re.S)
        rows.append([unescape(c).strip() for c in cells])
    return rows


@pytest.mark.parametrize("role", Role.values)
def test_every_staff_role_sees_the_dashboard(world_a, role):
    record(world_a, "2026-01-10", 1000)
    response = world_a.staff_client(role).get(URL)
    assert response.status_code == 200
    assert b'data-testid="analytics-dashboard"' in response.content


def test_signed_out_goes_to_sign_in():
    response = pytest.importorskip("django.test").Client().get(URL)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_page_reads_the_cached_snapshot_refreshed_by_the_task(world_a):
    record(world_a, "2026-01-10", 1000)
    with tenant_context(world_a.tenant):
        stale = refresh_snapshot(world_a.tenant)
    record(world_a, "2026-02-10", 4000, before=1000)  # not in the cached snapshot yet
    client = world_a.staff_client(Role.ANALYST)
    assert client.get(URL).context["snapshot"]["built_at"] == stale["built_at"]
    assert refresh_dashboards() >= 2
    fresh = client.get(URL).context["snapshot"]
    assert fresh["built_at"] != stale["built_at"]


@pytest.mark.parametrize(
    "name", ["revenue", "segment", "cohort", "tier", "funnel", "declines", "feedback", "adoption", "rules"]
)
def test_csv_equals_the_page(world_a, name):
    record(world_a, "2025-12-10", 1000)
    record(world_a, "2026-01-10", 2500, before=1000, tier="pro")
    client = world_a.staff_client(Role.CSM)
    html = client.get(URL).content.decode()
    exported = client.get(f"/analytics/{name}.csv")
    assert exported.status_code == 200 and exported["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.content.decode())))
    page = page_table(html, name)
    if len(page) == 2 and len(page[1]) == 1:  # "Nothing yet."
        assert rows == page[:1]
    else:
        assert rows == page


def test_unknown_table_is_404(world_a):
    assert world_a.staff_client().get("/analytics/planets.csv").status_code == 404


def test_another_tenants_figures_never_show(world_a, world_b):
    record(world_b, "2026-01-10", 777_700, currency="EUR")
    record(world_a, "2026-01-10", 1000)
    html = world_a.staff_client().get(URL).content.decode()
    assert "EUR" not in html and "7777" not in html
    exported = world_a.staff_client().get("/analytics/revenue.csv").content.decode()
    assert "EUR" not in exported and "7777" not in exported


def test_upgrade_board_lists_accounts_in_motion_and_its_csv_equals_the_page(workspaces):
    a, b = workspaces  # B's account has a failed plan change; A's only a settled one
    client = b.world.staff_client(Role.ANALYST)
    html = client.get("/analytics/board/").content.decode()
    page = page_table(html.replace('data-testid="board"', 'data-testid="table-board"'), "board")
    assert len(page) == 2 and page[1][-1] == "1"  # one account, one failure
    exported = list(csv.reader(io.StringIO(client.get("/analytics/board/?format=csv").content.decode())))
    assert exported == page
    # Tenant A never sees B's failure.
    a_html = a.world.staff_client(Role.ANALYST).get("/analytics/board/").content.decode()
    assert "Nothing in motion." in a_html and b.world.tenant.name not in a_html


def test_feedback_csv_equals_the_page_with_rows(world_a):
    from upgrades.offers.models import Feedback

    Feedback.objects.create(tenant=world_a.tenant, account=world_a.account, kind="decline", reason_code="not_now")
    Feedback.objects.create(tenant=world_a.tenant, account=world_a.account, kind="survey", satisfaction=4)
    client = world_a.staff_client(Role.ANALYST)
    page = page_table(client.get(URL).content.decode(), "feedback")
    rows = list(csv.reader(io.StringIO(client.get("/analytics/feedback.csv").content.decode())))
    assert rows == page and rows[1][1:5] == ["none", "1", "Not now 1", "1"] and rows[1][5] == "4.0"


def test_admin_index_links_to_the_dashboard(world_a):
    html = world_a.staff_client(Role.ANALYST).get("/admin/").content.decode()
    assert 'data-testid="try-analytics"' in html and f'href="{URL}"' in html
