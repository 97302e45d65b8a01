"""The invitation flow as the unprivileged app role under row-level security: the page finds its membership by
the token's hash before any tenant is known (a registered SECURITY DEFINER lookup), then reads and writes it
inside that tenant only."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from accounts.models import Membership, Role
from accounts.tenancy import tenant_context
from tests.isolation import admin_url
from tests.tenancy.conftest import APP_PASSWORD, APP_ROLE, app_role, connect_as  # noqa: F401 - fixtures

pytestmark = [pytest.mark.integration]


def test_inviting_accepting_and_landing_in_the_tenant_work_as_the_app_role(two_tenants, connect_as):  # noqa: F811
    a, b = two_tenants
    owner = a.staff_client(Role.OWNER)
    connect_as.switch(USER=APP_ROLE, PASSWORD=APP_PASSWORD)

    response = owner.post(admin_url(Membership, "add"), {"email": "rls.hire@tenant-a.test", "role": "csm"})
    assert response.status_code == 302, response.content[:500]
    [message] = [m for m in mail.outbox if m.to == ["rls.hire@tenant-a.test"]]
    path = re.search(r"https?://[^/\s]+(/invitations/[A-Za-z0-9_-]+/)", message.body).group(1)

    newcomer = Client()
    page = newcomer.get(path)
    assert page.status_code == 200 and "Join Tenant A" in page.content.decode()
    done = newcomer.post(
        path, {"decision": "accept", "new_password1": "Rls-passw0rd-ok", "new_password2": "Rls-passw0rd-ok"}
    )
    assert done.status_code == 302 and done["Location"] == "/admin/"
    assert "Tenant A" in newcomer.get("/admin/").content.decode()
    assert newcomer.get(path).status_code == 404

    # Row-level security is really on: with no tenant the membership is invisible, inside A it is there.
    assert not Membership.all_objects.filter(user__email="rls.hire@tenant-a.test").exists()
    with tenant_context(a.tenant):
        assert Membership.objects.filter(user__email="rls.hire@tenant-a.test").exists()
    with tenant_context(b.tenant):
        assert not Membership.all_objects.filter(user__email="rls.hire@tenant-a.test").exists()
