"""Staff invitations: a membership starts as an invitation the person accepts (or declines).

A real SMTP round trip carries the link; the token is bound to one membership, single use, expiring and
stored hashed; an existing user added to another tenant is asked, not enrolled; nothing is granted until
the invitation is accepted."""

import datetime
import email
import hashlib
import re

import pytest
from aiosmtpd.controller import Controller
from django.test import Client
from django.utils import timezone

from accounts import invitations
from accounts.errors import InvalidInput, PermissionDenied
from accounts.models import AuditEntry, Membership, Role, User
from accounts.tasks import send_invitation
from tests.isolation import admin_url
from tests.services import free_port

pytestmark = pytest.mark.django_db

PASSWORD = "a-Long-new-passw0rd"
LINK = re.compile(r"http://testserver(/invitations/[A-Za-z0-9_-]+/)")


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []
        self.port = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def links(self) -> list[str]:
        return [LINK.search(m.get_payload(decode=True).decode()).group(1) for m in self.messages]


@pytest.fixture
def smtp_inbox(settings):
    inbox = Inbox()
    port = inbox.port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.SITE_URL = "http://testserver"
    yield inbox
    controller.stop()


@pytest.fixture
def invite(django_capture_on_commit_callbacks):
    def _invite(world, email_address: str, role: str = Role.CSM, actor=None) -> Membership:
        with django_capture_on_commit_callbacks(execute=True):
            return invitations.add_member(
                world.tenant, email=email_address, role=role, actor=actor or world.staff[Role.OWNER]
            )

    return _invite


def workspace_of(client: Client) -> str:
    """The tenant the admin puts this signed-in person in (its name is in the page)."""
    return client.get("/admin/").content.decode()


def accept_as_new_person(link: str, password: str = PASSWORD) -> Client:
    client = Client()
    page = client.get(link)
    assert page.status_code == 200 and 'name="new_password1"' in page.content.decode()
    done = client.post(link, {"decision": "accept", "new_password1": password, "new_password2": password})
    assert done.status_code == 302 and done["Location"] == "/admin/"
    return client


def test_a_new_member_gets_an_invitation_over_smtp_sets_a_password_and_lands_in_that_tenant(
    world_a, smtp_inbox, invite
):
    membership = invite(world_a, "newcomer@tenant-a.test")

    assert len(smtp_inbox.messages) == 1
    message = smtp_inbox.messages[0]
    assert message["To"] == "newcomer@tenant-a.test"
    assert "Tenant A" in message["Subject"]
    [link] = smtp_inbox.links()
    membership.refresh_from_db()
    assert membership.accepted_at is None and membership.invitation_sent_at is not None
    assert not Membership.objects.filter(pk=membership.pk).exists()  # pending: grants nothing yet

    client = accept_as_new_person(link)
    user = User.objects.get(email="newcomer@tenant-a.test")
    assert user.check_password(PASSWORD)
    assert "Tenant A" in workspace_of(client)
    membership.refresh_from_db()
    assert membership.accepted_at is not None and membership.invitation_token_hash == ""
    assert Client().login(username="newcomer@tenant-a.test", password=PASSWORD)
    actions = set(AuditEntry.objects.for_tenant(world_a.tenant).values_list("action", flat=True))
    assert {"membership.invited", "membership.invitation_sent", "membership.accepted"} <= actions
    # The link is single use.
    again = Client().get(link)
    assert again.status_code == 404 and "invalid or has expired" in again.content.decode()


def test_the_token_is_stored_only_as_its_hash(world_a, smtp_inbox, invite):
    membership = invite(world_a, "hashed@tenant-a.test")
    token = smtp_inbox.links()[0].split("/")[2]
    membership.refresh_from_db()
    assert membership.invitation_token_hash == hashlib.sha256(token.encode()).hexdigest()
    row = Membership.all_objects.filter(pk=membership.pk).values().get()
    assert not any(token in str(value) for value in row.values())


def test_a_second_tenant_adding_the_same_person_sends_its_own_invitation_and_the_first_link_cannot_open_it(
    two_tenants, smtp_inbox, invite
):
    """The takeover: A's staff hold the link A sent; B later adds the same email as owner."""
    a, b = two_tenants
    invite(a, "victim@example.test", Role.ANALYST)
    invite(b, "victim@example.test", Role.OWNER)

    assert len(smtp_inbox.messages) == 2  # B's invitation is sent, not skipped
    link_a, link_b = smtp_inbox.links()
    assert link_a != link_b
    pending_b = Membership.all_objects.get(tenant=b.tenant, user__email="victim@example.test")
    assert pending_b.accepted_at is None

    # Whoever uses A's link gets A's membership and nothing else.
    attacker = accept_as_new_person(link_a)
    html = workspace_of(attacker)
    assert "Tenant A" in html and "Tenant B" not in html
    attacker.post("/admin/switch-tenant/", {"tenant": b.tenant.pk, "next": "/admin/"})
    assert "Tenant B Customer" not in attacker.get(admin_url(type(b.account), "changelist")).content.decode()
    pending_b.refresh_from_db()
    assert pending_b.accepted_at is None
    # B's link needs the person signed in: anonymous use is refused and changes nothing.
    anonymous = Client().post(link_b, {"decision": "accept"})
    assert "Sign in as victim@example.test" in anonymous.content.decode()
    pending_b.refresh_from_db()
    assert pending_b.accepted_at is None


def test_an_existing_user_added_to_another_tenant_is_asked_and_not_enrolled(two_tenants, smtp_inbox, invite):
    a, b = two_tenants
    person = b.staff[Role.ANALYST]
    invite(a, person.email, Role.PRODUCT_MANAGER)

    assert len(smtp_inbox.messages) == 1
    [link] = smtp_inbox.links()
    client = Client()
    assert client.login(username=person.email, password="pw-for-tests-123")
    html = workspace_of(client)
    assert "Tenant B" in html and "Tenant A" not in html  # not in the switcher, not the default
    client.post("/admin/switch-tenant/", {"tenant": a.tenant.pk, "next": "/admin/"})
    assert "Tenant A" not in workspace_of(client)

    page = client.get(link).content.decode()
    assert 'value="accept"' in page and 'value="decline"' in page and "new_password1" not in page
    assert client.post(link, {"decision": "accept"}).status_code == 302
    assert person.check_password("pw-for-tests-123")  # an existing user's password is never touched
    client.post("/admin/switch-tenant/", {"tenant": a.tenant.pk, "next": "/admin/"})
    assert "Tenant A Customer" in client.get(admin_url(type(a.account), "changelist")).content.decode()


def test_an_existing_users_invitation_cannot_be_answered_by_someone_else(two_tenants, smtp_inbox, invite):
    a, b = two_tenants
    person = b.staff[Role.ANALYST]
    membership = invite(a, person.email)
    [link] = smtp_inbox.links()

    other = a.staff_client(Role.OWNER)
    assert "This invitation is for" in other.get(link).content.decode()
    other.post(link, {"decision": "accept"})
    other.post(link, {"decision": "decline"})
    membership.refresh_from_db()
    assert membership.accepted_at is None
    with pytest.raises(PermissionDenied):
        invitations.accept_invitation(token=link.split("/")[2], user=None)


def test_declining_removes_the_invitation_and_audits_it(world_a, smtp_inbox, invite):
    membership = invite(world_a, "no.thanks@tenant-a.test")
    [link] = smtp_inbox.links()
    response = Client().post(link, {"decision": "decline"})
    assert response.status_code == 200 and "declined" in response.content.decode()
    assert not Membership.all_objects.filter(pk=membership.pk).exists()
    assert AuditEntry.objects.for_tenant(world_a.tenant).filter(action="membership.declined").exists()
    assert Client().get(link).status_code == 404


def test_an_expired_invitation_link_is_refused(world_a, smtp_inbox, invite):
    membership = invite(world_a, "late@tenant-a.test")
    [link] = smtp_inbox.links()
    Membership.all_objects.filter(pk=membership.pk).update(
        invitation_expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    response = Client().post(link, {"decision": "accept", "new_password1": PASSWORD, "new_password2": PASSWORD})
    assert response.status_code == 404
    membership.refresh_from_db()
    assert membership.accepted_at is None
    assert not User.objects.get(email="late@tenant-a.test").has_usable_password()


def test_invitations_expire_after_seven_days(world_a, invite):
    before = timezone.now()
    membership = invite(world_a, "week@tenant-a.test")
    assert (
        datetime.timedelta(days=7) <= membership.invitation_expires_at - before < datetime.timedelta(days=7, seconds=60)
    )


def test_inviting_again_rotates_the_token(world_a, smtp_inbox, invite):
    first = invite(world_a, "again@tenant-a.test", Role.ANALYST)
    second = invite(world_a, "again@tenant-a.test", Role.CSM)
    assert first.pk == second.pk
    old_link, new_link = smtp_inbox.links()
    assert Client().get(old_link).status_code == 404
    accept_as_new_person(new_link)
    assert Membership.objects.get(pk=first.pk).role == Role.CSM
    assert AuditEntry.objects.for_tenant(world_a.tenant).filter(action="membership.reinvited").exists()


def test_the_owner_resends_and_revokes_invitations_in_the_admin(
    world_a, smtp_inbox, django_capture_on_commit_callbacks
):
    owner = world_a.staff_client(Role.OWNER)
    with django_capture_on_commit_callbacks(execute=True):
        owner.post(admin_url(Membership, "add"), {"email": "hire@tenant-a.test", "role": "csm"})
    membership = Membership.all_objects.get(user__email="hire@tenant-a.test")
    with django_capture_on_commit_callbacks(execute=True):
        owner.post(
            admin_url(Membership, "changelist"), {"action": "resend_invitations", "_selected_action": [membership.pk]}
        )
    old_link, new_link = smtp_inbox.links()
    assert Client().get(old_link).status_code == 404 and Client().get(new_link).status_code == 200

    owner.post(
        admin_url(Membership, "changelist"), {"action": "revoke_invitations", "_selected_action": [membership.pk]}
    )
    assert not Membership.all_objects.filter(pk=membership.pk).exists()
    assert Client().get(new_link).status_code == 404
    assert AuditEntry.objects.for_tenant(world_a.tenant).filter(action="membership.invitation_revoked").exists()


@pytest.mark.parametrize("role", [Role.PRODUCT_MANAGER, Role.CSM, Role.ANALYST])
def test_roles_that_do_not_manage_staff_cannot_invite(world_a, role):
    with pytest.raises(PermissionDenied):
        invitations.add_member(world_a.tenant, email="x@tenant-a.test", role=Role.ANALYST, actor=world_a.staff[role])
    response = world_a.staff_client(role).post(
        admin_url(Membership, "add"), {"email": "x@tenant-a.test", "role": "analyst"}
    )
    assert response.status_code == 403
    assert not Membership.all_objects.filter(user__email="x@tenant-a.test").exists()


def test_a_member_may_not_invite_above_their_own_rank(world_a, monkeypatch):
    from accounts import models

    monkeypatch.setitem(
        models.ROLE_CAPABILITIES,
        Role.PRODUCT_MANAGER,
        models.ROLE_CAPABILITIES[Role.PRODUCT_MANAGER] | {models.Capability.MANAGE_TENANT},
    )
    pm = world_a.staff[Role.PRODUCT_MANAGER]
    with pytest.raises(PermissionDenied):
        invitations.add_member(world_a.tenant, email="boss@tenant-a.test", role=Role.OWNER, actor=pm)
    assert invitations.add_member(world_a.tenant, email="peer@tenant-a.test", role=Role.CSM, actor=pm).role == Role.CSM


def test_someone_with_only_a_pending_invitation_has_no_workspace(world_a, invite):
    membership = invite(world_a, "pending@tenant-a.test")
    user = membership.user
    user.set_password(PASSWORD)
    user.save()
    client = Client()
    client.force_login(user)
    response = client.get(admin_url(type(world_a.account), "changelist"))
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_unknown_role_and_bad_email_are_refused(world_a):
    with pytest.raises(InvalidInput) as exc:
        invitations.add_member(world_a.tenant, email="not-an-email", role="emperor", actor="test")
    assert set(exc.value.details) == {"email", "role"}
    assert not User.objects.filter(email="not-an-email").exists()


# --- Delivery: once per token, also when the task is redelivered ------------------------


def test_a_redelivered_send_task_does_not_send_the_invitation_twice(world_a, smtp_inbox, invite):
    membership = invite(world_a, "once@tenant-a.test")
    assert len(smtp_inbox.messages) == 1
    assert send_invitation.apply(args=[world_a.tenant.pk, membership.pk]).get() is False
    assert len(smtp_inbox.messages) == 1


def test_a_send_that_started_but_never_finished_is_not_repeated_and_shows_as_uncertain(
    world_a, smtp_inbox, django_capture_on_commit_callbacks
):
    """What a worker killed mid-send leaves behind: started, not sent. The redelivery must not send again."""
    membership = invitations.add_member(world_a.tenant, email="crash@tenant-a.test", role=Role.CSM, actor="test")
    Membership.all_objects.filter(pk=membership.pk).update(invitation_send_started_at=timezone.now())
    assert send_invitation.apply(args=[world_a.tenant.pk, membership.pk]).get() is False
    assert smtp_inbox.messages == []
    listing = world_a.staff_client(Role.OWNER).get(admin_url(Membership, "changelist")).content.decode()
    assert "delivery uncertain" in listing
    with django_capture_on_commit_callbacks(execute=True):
        invitations.resend_invitation(world_a.tenant, membership=membership, actor=world_a.staff[Role.OWNER])
    assert len(smtp_inbox.messages) == 1


def test_a_mail_server_error_leaves_the_invitation_ready_to_retry(world_a, settings, smtp_inbox):
    membership = invitations.add_member(world_a.tenant, email="retry@tenant-a.test", role=Role.CSM, actor="test")
    settings.EMAIL_PORT = free_port()  # nothing listens: connection refused
    with pytest.raises(OSError):
        invitations.deliver_invitation(world_a.tenant, membership_id=membership.pk)
    membership.refresh_from_db()
    assert membership.invitation_send_started_at is None and membership.invitation_sent_at is None
    settings.EMAIL_PORT = smtp_inbox.port
    assert invitations.deliver_invitation(world_a.tenant, membership_id=membership.pk) is True
    assert len(smtp_inbox.messages) == 1


def test_another_tenants_id_sends_nothing(two_tenants, smtp_inbox):
    a, b = two_tenants
    membership = invitations.add_member(b.tenant, email="b.hire@tenant-b.test", role=Role.CSM, actor="test")
    assert send_invitation.apply(args=[a.tenant.pk, membership.pk]).get() is False
    assert smtp_inbox.messages == []
