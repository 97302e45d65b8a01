"""Brute-force protection on sign-in (django-axes): failed attempts lock the account (from any address) and
the address (for any account); while locked even the right password is refused, with a page that says so;
the lock lifts after the cool-off."""

from __future__ import annotations

import datetime

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.utils import timezone

from accounts.models import Role

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"
RIGHT = "pw-for-tests-123"


def attempt(email: str, password: str, *, address: str = "10.0.0.1", client: Client | None = None):
    return (client or Client()).post(LOGIN, {"username": email, "password": password}, REMOTE_ADDR=address)


def fail(times: int, email: str, address: str = "10.0.0.1") -> None:
    for _ in range(times):
        response = attempt(email, "wrong-password", address=address)
        assert response.status_code in (200, 429)


def assert_locked_page(response) -> None:
    assert response.status_code == 429
    html = response.content.decode()
    assert 'data-testid="locked-out"' in html and "even the right password is refused" in html
    assert "paused for 15 minutes" in html
    assert "_auth_user_id" not in response.client.session


def test_a_few_failures_do_not_lock_and_the_right_password_still_works(world_a, settings):
    email = world_a.staff[Role.OWNER].email
    fail(settings.AXES_FAILURE_LIMIT - 1, email)
    response = attempt(email, RIGHT)
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_repeated_failures_lock_the_account_even_from_another_address(world_a, settings):
    email = world_a.staff[Role.OWNER].email
    fail(settings.AXES_FAILURE_LIMIT, email, address="10.0.0.1")

    assert_locked_page(attempt(email, RIGHT, address="10.0.0.1"))
    assert_locked_page(attempt(email, RIGHT, address="192.0.2.77"))  # the account, not only the address
    # Another account from a fresh address is unaffected.
    other = attempt(world_a.staff[Role.CSM].email, RIGHT, address="192.0.2.78")
    assert other.status_code == 302


def test_repeated_failures_from_one_address_lock_that_address_for_every_account(world_a, settings):
    for i in range(settings.AXES_FAILURE_LIMIT):
        attempt(f"guess{i}@tenant-a.test", "wrong-password", address="198.51.100.9")
    assert_locked_page(attempt(world_a.staff[Role.ANALYST].email, RIGHT, address="198.51.100.9"))
    assert attempt(world_a.staff[Role.ANALYST].email, RIGHT, address="198.51.100.10").status_code == 302


def test_the_lock_lifts_after_the_cool_off(world_a, settings):
    email = world_a.staff[Role.OWNER].email
    fail(settings.AXES_FAILURE_LIMIT, email)
    assert_locked_page(attempt(email, RIGHT))
    AccessAttempt.objects.update(
        attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - datetime.timedelta(seconds=1)
    )
    response = attempt(email, RIGHT)
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_the_cool_off_is_fifteen_minutes_and_five_failures_by_default(settings):
    assert datetime.timedelta(minutes=15) == settings.AXES_COOLOFF_TIME
    assert settings.AXES_FAILURE_LIMIT == 5
    assert settings.AXES_LOCKOUT_PARAMETERS == ["username", "ip_address"]
