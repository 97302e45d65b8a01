"""Close the loop: a PM or the owner answers feedback with a packaging change; customers are told once;
early access is a CSM grant of at most 30 days; audited; other roles refused; another tenant's ids 404."""

from __future__ import annotations

import pytest

from accounts.models import AuditEntry, Role
from billing.models import GrantKind, LicenseGrant
from messaging.models import Message
from tests.upgrades.offers.factories_life import holding, make_offer
from upgrades.analytics.loop import TEMPLATE_KEY
from upgrades.offers.models import Feedback

pytestmark = pytest.mark.django_db
URL = "/analytics/feedback/answer/"


@pytest.fixture
def declined(world_a, world_b):
    held = holding(world_a.tenant, world_a.account)
    offer = make_offer(held, state="declined")
    held_b = holding(world_b.tenant, world_b.account)
    offer_b = make_offer(held_b, state="declined")
    mine = Feedback.objects.create(
        tenant=world_a.tenant,
        account=world_a.account,
        contact=world_a.contact,
        offer=offer,
        kind="decline",
        reason_code="too_expensive",
    )
    theirs = Feedback.objects.create(
        tenant=world_b.tenant,
        account=world_b.account,
        contact=world_b.contact,
        offer=offer_b,
        kind="decline",
        reason_code="too_expensive",
    )
    return offer, mine, theirs


def post(client, offer, ids, **extra):
    data = {"target_kind": offer.target_kind, "target_key": offer.target_key, "change": "Team now includes SSO"}
    return client.post(URL, {**data, "feedback": [str(i) for i in ids], **extra})


def test_pm_answers_feedback_tells_the_contact_once_grants_early_access_and_is_audited(world_a, declined):
    offer, mine, _ = declined
    client = world_a.staff_client(Role.PRODUCT_MANAGER)
    page = client.get(
        URL, {"target_kind": offer.target_kind, "target_key": offer.target_key, "reason": "too_expensive"}
    )
    assert page.status_code == 200 and page.content.count(b'data-testid="feedback-row"') == 1
    assert b" checked" not in page.content  # nothing ticked for the person
    done = post(client, offer, [mine.pk], days="14")
    assert done.status_code == 200 and b'data-testid="feedback-answered"' in done.content
    messages = Message.objects.filter(tenant=world_a.tenant, contact=world_a.contact, template_key=TEMPLATE_KEY)
    assert messages.count() == 1 and messages.get().category == "upgrade"
    grant = LicenseGrant.objects.get(tenant=world_a.tenant, account=world_a.account, kind=GrantKind.CSM_GRANT)
    assert 13 <= (grant.ends_at - grant.starts_at).days <= 14
    assert AuditEntry.objects.filter(tenant=world_a.tenant, action="analytics.feedback_answered").count() == 1
    again = post(client, offer, [mine.pk], days="14")  # same change: no second message, the grant is running
    assert again.status_code == 200 and messages.count() == 1
    assert LicenseGrant.objects.filter(tenant=world_a.tenant, kind=GrantKind.CSM_GRANT).count() == 1


@pytest.mark.parametrize("role", [Role.ANALYST, Role.CSM])
def test_analyst_and_csm_are_refused(world_a, declined, role):
    offer, mine, _ = declined
    client = world_a.staff_client(role)
    assert client.get(URL).status_code == 403
    assert post(client, offer, [mine.pk]).status_code == 403
    assert not Message.objects.filter(template_key=TEMPLATE_KEY).exists()


def test_another_tenants_feedback_is_404_and_nothing_is_sent(world_a, declined):
    offer, mine, theirs = declined
    response = post(world_a.staff_client(Role.OWNER), offer, [mine.pk, theirs.pk])
    assert response.status_code == 404
    assert not Message.objects.filter(template_key=TEMPLATE_KEY).exists()
    assert not AuditEntry.objects.filter(action="analytics.feedback_answered").exists()


@pytest.mark.parametrize("days", ["31", "0", "soon"])
def test_early_access_beyond_30_days_is_refused_with_the_field(world_a, declined, days):
    offer, mine, _ = declined
    response = post(world_a.staff_client(Role.OWNER), offer, [mine.pk], days=days)
    assert response.status_code == 400 and b"days" in response.content
    assert not LicenseGrant.objects.filter(kind=GrantKind.CSM_GRANT).exists()
    assert not Message.objects.filter(template_key=TEMPLATE_KEY).exists()


def test_post_needs_csrf(world_a, declined):
    from django.test import Client

    offer, mine, _ = declined
    client = Client(enforce_csrf_checks=True)
    client.force_login(world_a.staff[Role.OWNER])
    assert post(client, offer, [mine.pk]).status_code == 403


def test_the_dashboard_links_to_it_for_pm_and_owner_only(world_a):
    for role, shown in ((Role.PRODUCT_MANAGER, True), (Role.OWNER, True), (Role.CSM, False), (Role.ANALYST, False)):
        html = world_a.staff_client(role).get("/analytics/").content
        assert (b'data-testid="answer-feedback-link"' in html) is shown
