"""A real SMTP round trip: the invitation leaves through smtplib, arrives at a local SMTP server,
and its link lets the new member set a password and sign in."""

import email
import re

import pytest
from aiosmtpd.controller import Controller
from django.test import Client

from accounts import services
from accounts.models import AuditEntry, Role, User
from tests.services import free_port

pytestmark = pytest.mark.django_db


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp_inbox(settings):
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.SITE_URL = "http://testserver"
    yield inbox
    controller.stop()


def test_new_member_gets_an_invitation_over_smtp_and_can_set_a_password(
    world_a, smtp_inbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.add_member(
            world_a.tenant, email="newcomer@tenant-a.test", role=Role.CSM, actor=world_a.staff[Role.OWNER]
        )
    assert len(smtp_inbox.messages) == 1
    message = smtp_inbox.messages[0]
    assert message["To"] == "newcomer@tenant-a.test"
    assert "Tenant A" in message["Subject"]
    link = re.search(r"http://testserver(/accounts/reset/\S+)", message.get_payload(decode=True).decode()).group(1)

    client = Client()
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200
    set_url = form_page.redirect_chain[-1][0]
    done = client.post(set_url, {"new_password1": "a-Long-new-passw0rd", "new_password2": "a-Long-new-passw0rd"})
    assert done.status_code == 302
    assert User.objects.get(email="newcomer@tenant-a.test").check_password("a-Long-new-passw0rd")
    assert Client().login(username="newcomer@tenant-a.test", password="a-Long-new-passw0rd")
    assert AuditEntry.objects.for_tenant(world_a.tenant).filter(action="membership.invited").exists()
    # The link is single use.
    assert "invalid" in Client().get(link, follow=True).content.decode().lower()


def test_existing_users_are_not_invited_again(world_a, world_b, smtp_inbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.add_member(world_a.tenant, email="analyst@tenant-b.test", role=Role.ANALYST, actor="test")
    assert smtp_inbox.messages == []


def test_unknown_role_is_refused(world_a):
    with pytest.raises(services.InvalidInput):
        services.add_member(world_a.tenant, email="x@y.test", role="emperor", actor="test")
    assert not User.objects.filter(email="x@y.test").exists()
