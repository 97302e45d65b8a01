"""The admin: templates validated on save, previewed with a real contact, governed by actions;
messages read-only with their suppression reason; every list and page scoped to the tenant."""

from __future__ import annotations

import pytest

from accounts.models import Role
from messaging.models import Message, MessageTemplate, MessagingSettings, TemplateState
from tests.isolation import admin_url, assert_change_page_refuses, assert_changelist_hides
from tests.messaging.conftest import OFFER_HTML, live_template, set_settings

pytestmark = pytest.mark.django_db

ADD = {"key": "offer-sent", "variant": "a", "name": "Offer", "purpose": "offer_sent", "channel": "email",
       "subject": "{{ offer.tier }} for {{ account.name }}", "html_body": OFFER_HTML}  # fmt: skip


def _add(client, **fields):
    return client.post(admin_url(MessageTemplate, "add"), {**ADD, **fields})


def test_a_pm_adds_a_draft_and_an_unknown_variable_shows_on_its_field(world_a):
    pm = world_a.staff_client(Role.PRODUCT_MANAGER)
    bad = _add(pm, html_body="<p>{{ coupon_code }}</p>")
    assert bad.status_code == 200 and "Unknown variable coupon_code" in bad.content.decode()
    escape = _add(pm, subject="{{ ''.__class__.__mro__ }}")
    assert escape.status_code == 200 and "Not allowed in a template" in escape.content.decode()
    assert not MessageTemplate.objects.exists()
    assert _add(pm).status_code == 302
    draft = MessageTemplate.objects.get(tenant=world_a.tenant)
    assert (draft.state, draft.version, draft.created_by) == (
        TemplateState.DRAFT,
        1,
        world_a.staff[Role.PRODUCT_MANAGER],
    )


def _act(client, action: str, template: MessageTemplate):
    return client.post(admin_url(MessageTemplate, "changelist"), {"action": action, "_selected_action": [template.pk]})


def test_governance_actions_need_the_capability_and_four_eyes(world_a):
    pm = world_a.staff_client(Role.PRODUCT_MANAGER)
    _add(pm)
    draft = MessageTemplate.objects.get(tenant=world_a.tenant)
    _act(pm, "submit_selected", draft)
    _act(pm, "approve_selected", draft)  # the author may not
    assert MessageTemplate.objects.get(pk=draft.pk).state == TemplateState.AWAITING_APPROVAL
    analyst = world_a.staff_client(Role.ANALYST)
    page = analyst.get(admin_url(MessageTemplate, "changelist")).content.decode()
    assert "approve_selected" not in page
    _act(analyst, "approve_selected", draft)  # not offered to an analyst: refused
    assert MessageTemplate.objects.get(pk=draft.pk).state == TemplateState.AWAITING_APPROVAL
    _act(world_a.staff_client(Role.OWNER), "approve_selected", draft)
    assert MessageTemplate.objects.get(pk=draft.pk).state == TemplateState.LIVE


def test_the_preview_renders_with_a_real_contact_of_the_tenant(world_a):
    template = live_template(world_a.tenant)
    page = world_a.staff_client(Role.ANALYST).get(admin_url(template, "change").replace("/change/", "/preview/"))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Tenant A Customer: Team may fit" in html and "Hi Buyer," in html and world_a.contact.email in html


def test_templates_messages_and_settings_of_another_tenant_are_hidden(two_tenants, send):
    a, b = two_tenants
    mine, theirs = live_template(a.tenant), live_template(b.tenant)
    my_msg, their_msg = send(a), send(b)
    set_settings(a.tenant)
    their_settings = set_settings(b.tenant)
    owner = a.staff_client(Role.OWNER)
    assert_changelist_hides(owner, own=mine, foreign=theirs)
    assert_change_page_refuses(owner, theirs)
    assert_change_page_refuses(owner, their_msg)
    assert_change_page_refuses(owner, their_settings)
    preview = owner.get(admin_url(theirs, "change").replace("/change/", "/preview/"))
    assert preview.status_code == 404 and b.account.name not in preview.content.decode()
    listing = owner.get(admin_url(Message, "changelist")).content.decode()
    assert admin_url(my_msg) in listing and admin_url(their_msg) not in listing


def test_a_suppressed_message_shows_its_reason_and_cannot_be_edited(world_a, send):
    live_template(world_a.tenant)
    set_settings(world_a.tenant, cap_count=0)
    message = send(world_a)
    owner = world_a.staff_client(Role.OWNER)
    page = owner.get(admin_url(message)).content.decode()
    assert "contact_cap" in page or "cap for the window is used" in page
    owner.post(admin_url(message), {"state": "sent"})
    assert Message.objects.get(pk=message.pk).state == "suppressed"
    assert MessagingSettings.objects.filter(tenant=world_a.tenant).count() == 1
