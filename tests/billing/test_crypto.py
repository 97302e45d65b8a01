"""Tenant Stripe secrets are encrypted at rest and survive key rotation."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from billing import crypto
from billing.errors import InvalidInput
from billing.models import StripeAccount
from billing.services.stripe_accounts import rotate_stripe_secrets, save_stripe_keys, stripe_for, webhook_secret_for

SECRET = "sk_test_plaintext_should_never_be_stored_4242"
WHSEC = "whsec_plaintext_signing_secret_9876"


def raw_row(pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM billing_stripeaccount WHERE id = %s", [pk])
        return repr(cursor.fetchone())


def test_keys_are_stored_encrypted_and_read_back_only_through_the_service(world_a):
    account = save_stripe_keys(world_a.tenant, actor=world_a.staff["owner"], secret_key=SECRET, webhook_secret=WHSEC)
    stored = raw_row(account.pk)
    assert SECRET not in stored and WHSEC not in stored and "plaintext" not in stored
    assert account.secret_key_hint == "sk_test_…4242"
    assert webhook_secret_for(world_a.tenant) == WHSEC
    assert stripe_for(world_a.tenant).client is stripe_for(world_a.tenant).client  # one client per tenant


def test_rotation_re_encrypts_under_the_newest_key_so_the_old_one_can_go(world_a, settings):
    old = settings.TIERWISE_ENCRYPTION_KEYS[0]
    account = save_stripe_keys(world_a.tenant, actor="t", secret_key=SECRET, webhook_secret=WHSEC)
    before = StripeAccount.objects.get(pk=account.pk).secret_key_encrypted
    new = Fernet.generate_key().decode()
    settings.TIERWISE_ENCRYPTION_KEYS = [new, old]
    assert rotate_stripe_secrets() == 1
    after = StripeAccount.objects.get(pk=account.pk).secret_key_encrypted
    assert after != before
    settings.TIERWISE_ENCRYPTION_KEYS = [new]  # the old key is dropped
    assert crypto.decrypt_secret(after) == SECRET
    with pytest.raises(crypto.SecretUnreadable):
        crypto.decrypt_secret(before)


def test_keys_of_the_wrong_shape_are_refused_with_the_field_named(world_a):
    with pytest.raises(InvalidInput) as excinfo:
        save_stripe_keys(world_a.tenant, actor="t", secret_key="pk_live_oops", webhook_secret="nope")
    assert set(excinfo.value.details) == {"secret_key", "webhook_secret"}
    assert not StripeAccount.objects.exists()
