"""The staff workspace at /admin/: the signed-in tenant's numbers, nothing of another tenant, links by role."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Membership, Role
from billing.models import PlanChangeState
from tests.upgrades.conftest import make_plan_change, price

pytestmark = pytest.mark.django_db


def workspace_html(client: Client) -> str:
    response = client.get("/admin/")
    assert response.status_code == 200
    return response.content.decode()


def texts_of(html: str, name: str) -> list[str]:
    """Text of every element carrying data-testid=name (tags stripped, whitespace collapsed)."""
    found = re.findall(rf'data-testid="{name}"[^>]*>(.*?)</(?:td|a|div|li|section|p)>', html, flags=re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", f).split()) for f in found]


def test_workspace_shows_the_signed_in_tenants_numbers(workspaces):
    a, _ = workspaces
    html = workspace_html(a.world.staff_client(Role.OWNER))
    assert "Tenant A workspace" in html
    assert texts_of(html, "kpi-accounts") == ["Customer accounts 4"]
    assert texts_of(html, "kpi-licences") == ["Licences in force 3 + 1 canceled or suspended"]
    assert texts_of(html, "kpi-mrr") == ["Monthly recurring revenue $390.00"]
    assert texts_of(html, "mrr-total") == ["$390.00"]
    assert texts_of(html, "tier-mrr") == ["$232.00", "$158.00"]
    assert texts_of(html, "tier-licences") == ["2", "1"]
    assert texts_of(html, "stage-count") == ["1", "0", "1", "0", "0", "2", "0"]
    assert "$43.21" in html  # the settled plan change's amount due
    assert "Scale v1" in html


def test_workspace_shows_nothing_of_another_tenant(workspaces):
    a, b = workspaces
    html = workspace_html(a.world.staff_client(Role.OWNER))
    for leak in ("Bee ", "Tenant B", "$5,400.00", "$9,876.54", "bee.secret_happened", "Failed: licence unchanged"):
        assert leak not in html, leak
    html_b = workspace_html(b.world.staff_client(Role.OWNER))
    assert texts_of(html_b, "kpi-mrr") == ["Monthly recurring revenue $5,400.00"]
    assert "Bee Scale v1" in html_b and "Scale v1" not in html_b.replace("Bee Scale v1", "")
    assert "$43.21" not in html_b


def test_switching_tenant_switches_the_workspace(workspaces):
    a, b = workspaces
    owner = a.world.staff[Role.OWNER]
    Membership.objects.create(tenant=b.world.tenant, user=owner, role=Role.ANALYST)
    client = a.world.staff_client(Role.OWNER)
    assert texts_of(workspace_html(client), "kpi-mrr") == ["Monthly recurring revenue $390.00"]
    client.post(reverse("admin:switch_tenant"), {"tenant": b.world.tenant.pk, "next": "/admin/"})
    html = workspace_html(client)
    assert texts_of(html, "kpi-mrr") == ["Monthly recurring revenue $5,400.00"]
    assert "$390.00" not in html and "Alpha" not in html
    assert "apikey/add/" not in html  # an analyst there, whatever they are in A


def test_owner_sees_edit_links_and_may_approve(workspace_a):
    a = workspace_a
    html = workspace_html(a.world.staff_client(Role.OWNER))
    assert reverse("admin:accounts_apikey_add") in html
    assert "Review and approve" in html and 'data-can-approve="yes"' in html
    assert reverse("admin:catalog_tier_change", args=[a.pending.pk]) in html
    assert reverse("admin:billing_license_change", args=[a.licences["acct-1"].pk]) in html  # the trial
    assert reverse("admin:billing_planchange_change", args=[a.plan_change.pk]) in html  # the settled upgrade
    assert reverse("admin:catalog_tier_preview") in html and reverse("admin:catalog_tier_matrix") in html
    assert reverse("api-docs") in html


def test_author_of_a_pending_change_is_told_someone_else_must_approve(workspace_a):
    html = workspace_html(workspace_a.world.staff_client(Role.PRODUCT_MANAGER))
    assert "Review and approve" not in html and 'data-can-approve="no"' in html
    assert "You wrote tier Scale v1" in html
    assert reverse("admin:accounts_apikey_add") not in html and "Owners create API keys." in html


def test_second_product_manager_is_offered_the_approval(workspace_a, second_pm):
    client = Client()
    client.force_login(second_pm)
    html = workspace_html(client)
    assert "Review and approve" in html and "1 for you to approve" in html


def test_analyst_sees_everything_but_has_no_edit_links(workspace_a):
    a = workspace_a
    html = workspace_html(a.world.staff_client(Role.ANALYST))
    assert texts_of(html, "kpi-mrr") == ["Monthly recurring revenue $390.00"]
    assert "Scale v1" in html and 'data-can-approve="no"' in html
    assert "Review and approve" not in html and "Publish" not in html
    assert "/add/" not in html  # neither the API key link nor the app list's add links
    assert "Owners create API keys." in html
    # Viewing is allowed: the trial licence and the settled upgrade stay one click away.
    assert reverse("admin:billing_license_change", args=[a.licences["acct-1"].pk]) in html
    assert reverse("admin:billing_planchange_change", args=[a.plan_change.pk]) in html


def test_platform_superuser_without_a_tenant_gets_the_plain_index(superuser, workspace_a):
    client = Client()
    client.force_login(superuser)
    html = workspace_html(client)
    assert 'data-testid="workspace"' not in html
    assert "$390.00" not in html


def test_empty_tenant_workspace_explains_what_will_appear(world_a):
    html = workspace_html(world_a.staff_client(Role.OWNER))
    assert texts_of(html, "kpi-mrr") == ["Monthly recurring revenue $0.00"]
    assert "No licences yet" in html and "No plan changes yet" in html
    assert "No trial is running" in html and "No upgrade has settled" in html
    assert "tw-mrr-chart" not in html  # no chart without two tiers to compare


def test_workspace_renders_in_a_fixed_number_of_queries(workspace_a):
    a = workspace_a
    client = a.world.staff_client(Role.OWNER)
    workspace_html(client)  # warm the session and caches

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            workspace_html(client)
        return len(queries)

    before = count()
    for i in range(5):
        make_plan_change(
            a.licences["acct-2"], target=price(a.ladder.team, "month"), state=PlanChangeState.CANCELED, due=i
        )
    assert count() == before


def test_the_usage_hint_names_the_trial_that_is_running_now(workspaces):
    a, _ = workspaces
    html = workspace_html(a.world.staff_client(Role.OWNER))
    assert texts_of(html, "try-usage-trial") == [a.accounts["acct-1"].name]
    assert "Quantum Analytics 4" not in html  # no hard-coded demo account


def test_the_usage_hint_names_no_trial_once_it_has_ended(workspaces):
    from django.utils import timezone

    from billing.models import LicenseGrant

    a, _ = workspaces
    LicenseGrant.objects.for_tenant(a.world.tenant).update(ends_at=timezone.now() - timezone.timedelta(days=1))
    html = workspace_html(a.world.staff_client(Role.OWNER))
    assert 'data-testid="try-usage-trial"' not in html and " trial until " not in html
    assert "No trial is running" in html
