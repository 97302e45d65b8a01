"""Data left by the old invitation (a Django set-password link in the tenant's outbox, a membership granted at
once) is made safe by the migrations: the old links stop working and are hidden, and password-less members
become pending invitations."""

from __future__ import annotations

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("accounts", "0004_idempotency_record"), ("messaging", "0001_initial")]
AFTER = [("accounts", "0006_invalidate_old_set_password_links"), ("messaging", "0002_hide_old_invitation_links")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def back_to_latest_after():
    yield
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())  # every app, also any that went back with accounts


def test_old_invitations_are_made_safe_by_the_migrations(back_to_latest_after):
    old = migrate(BEFORE)
    Tenant, User = old.get_model("accounts", "Tenant"), old.get_model("accounts", "User")
    Membership, OutboxEmail = old.get_model("accounts", "Membership"), old.get_model("messaging", "OutboxEmail")
    tenant = Tenant.objects.create(name="Old", slug="old")
    invited = User.objects.create(email="invited@old.test", password="!oldunusablehash")
    member = User.objects.create(email="member@old.test", password="md5$salt$abc")
    Membership.objects.create(tenant=tenant, user=invited, role="owner")
    Membership.objects.create(tenant=tenant, user=member, role="analyst")
    OutboxEmail.objects.create(
        tenant=tenant,
        subject="You're invited to Old on Tierwise",
        text_body="Choose a password: http://x/accounts/reset/MQ/abc-123/",
        headers={"X-Tierwise-Tenant": "old"},
    )

    from accounts.models import User as CurrentUser

    token = default_token_generator.make_token(CurrentUser.objects.get(email="invited@old.test"))
    new = migrate(AFTER)

    user = CurrentUser.objects.get(email="invited@old.test")
    assert not user.has_usable_password()
    assert not default_token_generator.check_token(user, token)  # the old set-password link is dead
    memberships = {m.user.email: m for m in new.get_model("accounts", "Membership").objects.select_related("user")}
    assert memberships["invited@old.test"].accepted_at is None  # pending: grants nothing until re-invited
    assert memberships["member@old.test"].accepted_at is not None
    mail = new.get_model("messaging", "OutboxEmail").objects.get()
    assert mail.headers["X-Tierwise-Sensitive"] == "invitation-link"
    assert mail.headers["X-Tierwise-Sensitive-Role"] == "owner"
