"""The public home page: what Tierwise is, where to sign in, where the API docs are; demo logins only in DEBUG."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.demo import DEMO_PASSWORD, seed_tenant
from accounts.models import Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(db):
    return seed_tenant(slug="acme", name="Acme Analytics", domain="acme.test", account_count=2, seed=7)


def test_home_explains_the_product_and_points_to_sign_in_and_api_docs(client: Client, settings):
    settings.DEBUG = False
    html = client.get("/").content.decode()
    assert "Tierwise" in html and "trigger rules" in html
    assert "personalised offer" not in html  # the home page promises only what exists (no offer engine yet)
    assert 'href="/admin/login/?next=/admin/"' in html
    assert 'href="/api/v1/docs/"' in html


def test_home_lists_demo_logins_when_debug_is_on(client: Client, settings, demo):
    settings.DEBUG = True
    html = client.get("/").content.decode()
    assert 'data-testid="demo-logins"' in html
    assert DEMO_PASSWORD in html
    for email in ("owner@acme.test", "pm@acme.test", "pm2@acme.test", "csm@acme.test", "analyst@acme.test"):
        assert email in html


def test_home_never_lists_demo_logins_without_debug(client: Client, settings, demo):
    settings.DEBUG = False
    html = client.get("/").content.decode()
    assert 'data-testid="demo-logins"' not in html
    assert "owner@acme.test" not in html and DEMO_PASSWORD not in html


def test_home_without_a_seeded_demo_shows_no_logins_even_in_debug(client: Client, settings, db):
    settings.DEBUG = True
    html = client.get("/").content.decode()
    assert 'data-testid="demo-logins"' not in html


def test_signed_in_staff_are_sent_to_their_workspace(settings, world_a):
    settings.DEBUG = False
    html = world_a.staff_client(Role.ANALYST).get("/").content.decode()
    assert "Open your workspace" in html and "Sign in to the staff workspace" not in html
