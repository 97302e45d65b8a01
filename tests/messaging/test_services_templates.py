"""Template governance: drafts edited by PMs, four eyes on approval, one live version per key, audited."""

from __future__ import annotations

import pytest

from accounts.models import AuditEntry, Role
from messaging.errors import Conflict, InvalidInput, PermissionDenied
from messaging.models import TemplateState
from messaging.services import templates as services
from tests.messaging.conftest import OFFER_HTML

pytestmark = pytest.mark.django_db

FIELDS = {"key": "offer-sent", "name": "Offer", "purpose": "offer_sent", "channel": "email",
          "subject": "{{ offer.tier }} for {{ account.name }}", "html_body": OFFER_HTML}  # fmt: skip


def _draft(world, role=Role.PRODUCT_MANAGER, **fields):
    return services.create_template(world.tenant, actor=world.staff[role], **{**FIELDS, **fields})


def test_a_pm_drafts_and_another_approves_it_live(world_a):
    draft = _draft(world_a)
    submitted = services.submit_template(world_a.tenant, template=draft, actor=world_a.staff[Role.PRODUCT_MANAGER])
    with pytest.raises(PermissionDenied) as caught:
        services.approve_template(world_a.tenant, template=submitted, actor=world_a.staff[Role.PRODUCT_MANAGER])
    assert caught.value.code == "four_eyes"
    live = services.approve_template(world_a.tenant, template=submitted, actor=world_a.staff[Role.OWNER])
    assert live.state == TemplateState.LIVE and live.approved_by == world_a.staff[Role.OWNER]
    actions = list(
        AuditEntry.objects.for_tenant(world_a.tenant).filter(object_id=str(live.pk))
        .order_by("id").values_list("action", flat=True)
    )  # fmt: skip
    assert actions == ["messagetemplate.created", "messagetemplate.submitted", "messagetemplate.approved"]


@pytest.mark.parametrize("role", [Role.ANALYST, Role.CSM])
def test_analysts_and_csms_may_neither_write_nor_approve(world_a, role):
    with pytest.raises(PermissionDenied):
        _draft(world_a, role=role)
    submitted = services.submit_template(world_a.tenant, template=_draft(world_a), actor=world_a.staff[Role.OWNER])
    with pytest.raises(PermissionDenied) as caught:
        services.approve_template(world_a.tenant, template=submitted, actor=world_a.staff[role])
    assert caught.value.code == "no_capability"


def test_an_invalid_template_is_refused_with_its_field(world_a):
    with pytest.raises(InvalidInput) as caught:
        _draft(world_a, html_body="{{ coupon }}")
    assert "Unknown variable coupon" in caught.value.details["html_body"][0]


def test_only_drafts_are_edited_and_a_new_version_replaces_the_live_one(world_a):
    pm, owner = world_a.staff[Role.PRODUCT_MANAGER], world_a.staff[Role.OWNER]
    v1 = services.approve_template(world_a.tenant, template=services.submit_template(
        world_a.tenant, template=_draft(world_a), actor=pm), actor=owner)  # fmt: skip
    with pytest.raises(Conflict):
        services.update_template(world_a.tenant, template=v1, actor=pm, subject="Changed")
    v2 = services.new_version(world_a.tenant, template=v1, actor=pm)
    assert (v2.version, v2.state) == (2, TemplateState.DRAFT)
    services.update_template(world_a.tenant, template=v2, actor=pm, subject="New {{ offer.tier }}")
    services.submit_template(world_a.tenant, template=v2, actor=pm)
    services.approve_template(world_a.tenant, template=v2, actor=owner)
    v1.refresh_from_db()
    v2.refresh_from_db()
    assert (v1.state, v2.state) == (TemplateState.RETIRED, TemplateState.LIVE)


def test_another_tenants_staff_cannot_act_on_a_template(two_tenants):
    a, b = two_tenants
    draft = _draft(a)
    with pytest.raises(PermissionDenied):
        services.submit_template(a.tenant, template=draft, actor=b.staff[Role.OWNER])
