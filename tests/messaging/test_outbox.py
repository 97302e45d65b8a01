"""The outbox: the embedded default's email backend files every message under its tenant, and staff
read their tenant's mail (and only theirs) in the admin, read-only."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core import mail
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.db import DatabaseError
from django.test import Client

from accounts.models import Membership, Role
from messaging.models import OutboxEmail
from tests.isolation import admin_url, assert_change_page_refuses, assert_changelist_hides

pytestmark = pytest.mark.django_db

BACKEND = "messaging.backends.OutboxEmailBackend"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def outbox_backend(settings):
    settings.EMAIL_BACKEND = BACKEND


def send(subject: str, *, tenant_slug: str | None, to: str = "someone@example.test", **kwargs) -> OutboxEmail:
    headers = {"X-Tierwise-Tenant": tenant_slug} if tenant_slug is not None else {}
    EmailMessage(subject=subject, body=kwargs.pop("body", "Hello"), to=[to], headers=headers, **kwargs).send()
    return OutboxEmail.objects.order_by("-id").first()


# --- The backend ---------------------------------------------------------------------


def test_the_backend_stores_each_message_under_the_tenant_named_in_its_header(world_a, outbox_backend):
    message = EmailMultiAlternatives(
        subject="Your usage this month",
        body="Plain text version",
        from_email="Acme <billing@acme.test>",
        to=["buyer@customer.test"],
        cc=["cfo@customer.test"],
        bcc=["audit@acme.test"],
        headers={"X-Tierwise-Tenant": "tenant-a", "Reply-To": "csm@acme.test"},
    )
    message.attach_alternative("<p>HTML version</p>", "text/html")
    message.attach("usage.csv", "day,events\n1,20\n", "text/csv")
    other = EmailMessage(
        subject="Second", body="two", to=["x@customer.test"], headers={"X-Tierwise-Tenant": "tenant-a"}
    )

    sent = mail.get_connection().send_messages([message, other])

    assert sent == 2
    stored = OutboxEmail.objects.for_tenant(world_a.tenant).get(subject="Your usage this month")
    assert stored.to == ["buyer@customer.test"]
    assert stored.cc == ["cfo@customer.test"]
    assert stored.bcc == ["audit@acme.test"]
    assert stored.from_email == "Acme <billing@acme.test>"
    assert stored.text_body == "Plain text version"
    assert stored.html_body == "<p>HTML version</p>"
    assert stored.headers["X-Tierwise-Tenant"] == "tenant-a"
    assert stored.headers["Reply-To"] == "csm@acme.test"
    assert stored.headers["To"] == "buyer@customer.test"
    assert "Message-ID" in stored.headers and "Bcc" not in stored.headers  # as SMTP would send it
    assert stored.attachments == [{"filename": "usage.csv", "mimetype": "text/csv", "size": 16}]
    assert stored.created_at.utcoffset().total_seconds() == 0
    assert OutboxEmail.objects.for_tenant(world_a.tenant).count() == 2


def test_mail_without_a_known_tenant_is_kept_as_platform_mail(world_a, outbox_backend):
    assert send("No header", tenant_slug=None).tenant is None
    assert send("Unknown slug", tenant_slug="no-such-tenant").tenant is None
    assert OutboxEmail.objects.filter(tenant__isnull=True).count() == 2


def test_an_html_only_message_keeps_its_html_and_no_text(world_a, outbox_backend):
    message = EmailMessage(subject="HTML only", body="<h1>Hi</h1>", to=["a@b.test"])
    message.content_subtype = "html"
    message.send()
    stored = OutboxEmail.objects.get(subject="HTML only")
    assert (stored.text_body, stored.html_body) == ("", "<h1>Hi</h1>")


def test_a_message_that_cannot_be_stored_raises_and_the_whole_batch_is_kept_out(world_a, outbox_backend, monkeypatch):
    calls = {"n": 0}
    original = OutboxEmail.objects.create

    def flaky_create(**kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise DatabaseError("disk full")
        return original(**kwargs)

    monkeypatch.setattr(OutboxEmail.objects, "create", flaky_create)
    batch = [EmailMessage(subject=f"m{i}", body="b", to=["a@b.test"]) for i in range(3)]

    with pytest.raises(DatabaseError):
        mail.get_connection().send_messages(batch)
    # All or nothing, so a retrying task never stores the first message twice.
    assert OutboxEmail.objects.count() == 0


def test_fail_silently_skips_only_the_message_that_failed_and_logs_it(world_a, outbox_backend, monkeypatch, caplog):
    calls = {"n": 0}
    original = OutboxEmail.objects.create

    def flaky_create(**kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise DatabaseError("disk full")
        return original(**kwargs)

    monkeypatch.setattr(OutboxEmail.objects, "create", flaky_create)
    batch = [EmailMessage(subject=f"m{i}", body="b", to=["a@b.test"]) for i in range(3)]

    with caplog.at_level("ERROR", logger="messaging.backends"):
        sent = mail.get_connection(fail_silently=True).send_messages(batch)

    assert sent == 2
    assert sorted(OutboxEmail.objects.values_list("subject", flat=True)) == ["m0", "m2"]
    assert any(r.getMessage() == "outbox.store_failed" and r.exc_info for r in caplog.records)


def test_a_header_injection_is_refused_like_smtp_would(world_a, outbox_backend):
    from django.core.mail import BadHeaderError

    with pytest.raises(BadHeaderError):
        EmailMessage(subject="Hi\nBcc: victim@x.test", body="b", to=["a@b.test"]).send()
    assert not OutboxEmail.objects.exists()


def test_without_email_url_the_settings_choose_the_outbox(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("EMAIL_URL", "DATABASE_URL", "REDIS_URL")}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", DEBUG="1", TIERWISE_VAR_DIR=str(tmp_path))
    code = "import django; django.setup(); from django.conf import settings; print(settings.EMAIL_BACKEND)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == BACKEND


# --- An invitation, end to end through the admin -------------------------------------


def test_a_member_added_in_the_admin_is_invited_through_the_outbox_of_that_tenant(
    two_tenants, outbox_backend, django_capture_on_commit_callbacks
):
    a, b = two_tenants
    owner_a = a.staff_client(Role.OWNER)
    with django_capture_on_commit_callbacks(execute=True):  # the invitation task runs on commit (eager in tests)
        response = owner_a.post(admin_url(Membership, "add"), {"email": "newcomer@tenant-a.test", "role": "csm"})
    assert response.status_code == 302

    invitation = OutboxEmail.objects.get(to=["newcomer@tenant-a.test"])
    assert invitation.tenant == a.tenant
    assert invitation.headers["X-Tierwise-Tenant"] == "tenant-a"
    assert invitation.headers["X-Tierwise-Sensitive"] == "invitation-link"
    assert "/invitations/" in invitation.text_body and "/accounts/reset/" not in invitation.text_body

    listing = owner_a.get(admin_url(OutboxEmail, "changelist") + "?q=newcomer").content.decode()
    assert admin_url(invitation) in listing and "newcomer@tenant-a.test" in listing
    detail = owner_a.get(admin_url(invitation)).content.decode()
    assert "invited you to join Tenant A" in detail and "/invitations/" in detail
    assert "X-Tierwise-Tenant: tenant-a" in detail

    owner_b = b.staff_client(Role.OWNER)
    assert "newcomer@tenant-a.test" not in owner_b.get(admin_url(OutboxEmail, "changelist")).content.decode()
    searched = owner_b.get(admin_url(OutboxEmail, "changelist") + "?q=newcomer").content.decode()
    assert "newcomer@tenant-a.test" not in searched and admin_url(invitation) not in searched
    assert_change_page_refuses(owner_b, invitation)


def _invitation_in_outbox(world, role: str, capture) -> OutboxEmail:
    from accounts.invitations import add_member

    with capture(execute=True):
        add_member(world.tenant, email=f"invited.{role}@tenant-a.test", role=role, actor="test")
    return OutboxEmail.objects.get(to=[f"invited.{role}@tenant-a.test"])


@pytest.mark.parametrize("reader", [Role.PRODUCT_MANAGER, Role.CSM, Role.ANALYST])
def test_staff_who_do_not_manage_members_read_an_invitation_without_its_link(
    world_a, outbox_backend, django_capture_on_commit_callbacks, reader
):
    invitation = _invitation_in_outbox(world_a, Role.OWNER, django_capture_on_commit_callbacks)
    token_link = re.search(r"http\S+/invitations/\S+/", invitation.text_body).group(0)
    detail = world_a.staff_client(reader).get(admin_url(invitation))
    html = detail.content.decode()
    assert detail.status_code == 200 and "invited you to join Tenant A" in html
    assert "/invitations/" not in html and token_link.split("/")[-2] not in html
    assert "link hidden: only staff who manage members and rank at least Owner" in html

    owner_view = world_a.staff_client(Role.OWNER).get(admin_url(invitation)).content.decode()
    assert token_link in owner_view


def test_a_member_manager_below_the_invited_role_does_not_see_the_link(
    world_a, outbox_backend, django_capture_on_commit_callbacks, monkeypatch
):
    """Inside one tenant a lower role never reads a higher role's invitation link, even if it manages members."""
    from accounts import models

    monkeypatch.setitem(
        models.ROLE_CAPABILITIES,
        Role.PRODUCT_MANAGER,
        models.ROLE_CAPABILITIES[Role.PRODUCT_MANAGER] | {models.Capability.MANAGE_TENANT},
    )
    for_owner = _invitation_in_outbox(world_a, Role.OWNER, django_capture_on_commit_callbacks)
    for_csm = _invitation_in_outbox(world_a, Role.CSM, django_capture_on_commit_callbacks)
    pm = world_a.staff_client(Role.PRODUCT_MANAGER)
    assert "/invitations/" not in pm.get(admin_url(for_owner)).content.decode()
    assert "/invitations/" in pm.get(admin_url(for_csm)).content.decode()


def test_a_sensitive_html_email_hides_its_links_in_the_preview_too(world_a, outbox_backend):
    message = EmailMultiAlternatives(
        subject="Join",
        body="Open https://tierwise.test/invitations/secret-token/",
        to=["x@y.test"],
        headers={
            "X-Tierwise-Tenant": "tenant-a",
            "X-Tierwise-Sensitive": "invitation-link",
            "X-Tierwise-Sensitive-Role": "owner",
        },
    )
    message.attach_alternative('<a href="https://tierwise.test/invitations/secret-token/">Join</a>', "text/html")
    message.send()
    stored = OutboxEmail.objects.get(subject="Join")
    html = world_a.staff_client(Role.ANALYST).get(admin_url(stored)).content.decode()
    assert "secret-token" not in html


# --- The admin: isolation, read-only, safe rendering ---------------------------------


@pytest.mark.parametrize("role", Role.values)
def test_every_role_lists_and_opens_its_own_tenants_mail_but_never_the_other_tenants(two_tenants, outbox_backend, role):
    a, b = two_tenants
    own = send("Welcome to A", tenant_slug="tenant-a", to="buyer@customer.test")
    foreign = send("Secret B renewal quote", tenant_slug="tenant-b", to="buyer@customer.test")
    platform = send("Platform notice", tenant_slug=None)
    client = a.staff_client(role)

    assert_changelist_hides(client, own=own, foreign=foreign)
    html = client.get(admin_url(OutboxEmail, "changelist")).content.decode()
    assert "Secret B renewal quote" not in html and admin_url(platform) not in html
    searched = client.get(admin_url(OutboxEmail, "changelist") + "?q=renewal").content.decode()
    assert "Secret B renewal quote" not in searched
    assert client.get(admin_url(own)).status_code == 200
    assert_change_page_refuses(client, foreign)
    assert_change_page_refuses(client, platform)


@pytest.mark.parametrize("role", Role.values)
def test_the_outbox_is_read_only_for_every_role(world_a, outbox_backend, role):
    own = send("Original subject", tenant_slug="tenant-a")
    client = world_a.staff_client(role)

    assert client.get(admin_url(OutboxEmail, "add")).status_code == 403
    assert client.post(admin_url(OutboxEmail, "add"), {"subject": "forged"}).status_code == 403
    detail = client.get(admin_url(own)).content.decode()
    assert 'name="_save"' not in detail and "Delete" not in detail
    assert client.post(admin_url(own), {"subject": "Changed"}).status_code == 403
    assert client.post(admin_url(own, "delete"), {"post": "yes"}).status_code == 403
    bulk = client.post(
        admin_url(OutboxEmail, "changelist"), {"action": "delete_selected", "_selected_action": [own.pk], "post": "yes"}
    )
    assert bulk.status_code in (200, 302, 403)
    own.refresh_from_db()
    assert own.subject == "Original subject"
    assert OutboxEmail.objects.filter(pk=own.pk).exists()


def test_superusers_see_every_tenants_mail_and_platform_mail(two_tenants, superuser, outbox_backend):
    mails = [
        send("To A", tenant_slug="tenant-a"),
        send("To B", tenant_slug="tenant-b"),
        send("Platform", tenant_slug=None),
    ]
    client = Client()
    client.force_login(superuser)
    html = client.get(admin_url(OutboxEmail, "changelist")).content.decode()
    assert all(admin_url(m) in html for m in mails)
    assert client.get(admin_url(mails[2])).status_code == 200


def test_email_content_is_shown_escaped_and_html_only_inside_a_sandboxed_frame(world_a, outbox_backend):
    message = EmailMultiAlternatives(
        subject="<img src=x onerror=alert(1)>",
        body="Text with <script>alert('text')</script>",
        to=["a@b.test"],
        headers={"X-Tierwise-Tenant": "tenant-a"},
    )
    message.attach_alternative(
        '<p>Hi</p><script>alert("html")</script><img src="https://tracker.test/p.gif">', "text/html"
    )
    message.send()
    stored = OutboxEmail.objects.get()
    html = world_a.staff_client(Role.ANALYST).get(admin_url(stored)).content.decode()

    assert "<script>alert" not in html
    assert "<img src=x onerror" not in html and '<img src="https://tracker.test' not in html
    assert "&lt;script&gt;alert(&#x27;text&#x27;)&lt;/script&gt;" in html  # the text body, escaped
    assert 'sandbox="" referrerpolicy="no-referrer"' in html
    assert 'srcdoc="&lt;meta http-equiv=&quot;Content-Security-Policy&quot;' in html
    assert "&lt;script&gt;alert(&quot;html&quot;)&lt;/script&gt;" in html  # only as an escaped srcdoc attribute
    listing = world_a.staff_client(Role.ANALYST).get(admin_url(OutboxEmail, "changelist")).content.decode()
    assert "<img src=x onerror" not in listing
