"""The "Assigned CSM" picker on a customer account offers the tenant's CSMs, nobody else."""

from __future__ import annotations

import pytest

from accounts.models import Role

pytestmark = pytest.mark.django_db


def test_the_assigned_csm_picker_offers_only_this_tenants_csms(world_a, world_b):
    response = world_a.staff_client(Role.OWNER).get(f"/admin/accounts/customeraccount/{world_a.account.pk}/change/")
    assert response.status_code == 200
    offered = list(response.context["adminform"].form.fields["assigned_csm"].queryset)
    assert offered == [world_a.staff[Role.CSM]]
