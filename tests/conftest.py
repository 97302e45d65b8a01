"""Shared fixtures: two look-alike tenants, API clients by scope, staff clients by role,
a real Celery worker, and a headless browser."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from rest_framework.test import APIClient

from accounts import services
from accounts.models import Contact, CustomerAccount, Membership, Role, Tenant, User
from tests import fast_flush
from tests.services import celery_worker, chromium_path, require_postgres, require_redis

ROOT = Path(__file__).resolve().parent.parent
fast_flush.install()


@pytest.fixture(autouse=True)
def no_cached_answer_left_behind() -> None:
    """The in-memory cache (the SQLite default) starts each test empty. SQLite hands a rolled-back test's
    row ids out again, and entitlement answers are cached by tenant id and account; a rolled-back test never
    invalidates what it cached (that runs on commit), so the next test with the same ids would read them.
    PostgreSQL's sequences never reuse an id, and its Redis cache has a key prefix per run."""
    from django.core.cache import caches
    from django.core.cache.backends.locmem import LocMemCache

    if isinstance(caches["default"], LocMemCache):
        caches["default"].clear()


@pytest.fixture(autouse=True)
def no_tenant_left_behind() -> Iterator[None]:
    """Each test starts and ends with no tenant context (row-level security reads it per transaction).

    Requests reset it in their middleware; a test that calls a view, an authenticator or a command
    directly must not hand its tenant to the next test (or to the test database's teardown).
    """
    from celery._state import _set_task_join_will_block

    from accounts.tenancy import activate_tenant

    activate_tenant(None)
    # A test that runs a task's tracer in this process (eagerly) can leave Celery believing it is inside a
    # worker, and then every later `result.get()` refuses to wait ("Never call result.get() within a task").
    _set_task_join_will_block(False)
    yield
    activate_tenant(None)
    _set_task_join_will_block(False)


@dataclass
class TenantWorld:
    """One tenant with a customer account, a contact and staff of every role."""

    tenant: Tenant
    account: CustomerAccount
    contact: Contact
    staff: dict[str, User]

    def api(self, *scopes: str) -> APIClient:
        _, secret = services.create_api_key(
            self.tenant, name="test", scopes=scopes or ("read", "write", "ingest"), actor="test"
        )
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        return client

    def staff_client(self, role: str = Role.OWNER) -> Client:
        client = Client()
        client.force_login(self.staff[role])
        return client


def make_world(slug: str, name: str) -> TenantWorld:
    tenant = Tenant.objects.create(slug=slug, name=name)
    staff = {}
    for role in Role.values:
        user = User.objects.create_user(f"{role}@{slug}.test", "pw-for-tests-123")
        Membership.objects.create(tenant=tenant, user=user, role=role)
        staff[role] = user
    # Same external ids and emails in both tenants: isolation must hold even for look-alikes.
    account = CustomerAccount.objects.create(
        tenant=tenant,
        external_id="acct-1",
        name=f"{name} Customer",
        industry="software",
        segment="smb",
        size_band="11-50",
    )
    contact = Contact.objects.create(tenant=tenant, account=account, email="buyer@customer.test", name="Buyer")
    return TenantWorld(tenant=tenant, account=account, contact=contact, staff=staff)


@pytest.fixture
def world_a(db) -> TenantWorld:
    return make_world("tenant-a", "Tenant A")


@pytest.fixture
def world_b(db) -> TenantWorld:
    return make_world("tenant-b", "Tenant B")


@pytest.fixture
def two_tenants(world_a: TenantWorld, world_b: TenantWorld) -> tuple[TenantWorld, TenantWorld]:
    """The reusable isolation fixture: A acts, B owns the ids A tries."""
    return world_a, world_b


@pytest.fixture
def superuser(db) -> User:
    return User.objects.create_superuser("root@tierwise.test", "pw-for-tests-123")


def _database_url() -> str:
    db = settings.DATABASES["default"]
    user, password = db.get("USER") or "postgres", db.get("PASSWORD") or ""
    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    return f"postgres://{user}:{password}@{host}:{port}/{db['NAME']}"


@pytest.fixture
def celery_worker_process(transactional_db, settings) -> Iterator[Callable[..., None]]:
    """A real `celery worker` process on Redis against the test database.

    Yields nothing useful to call; tests enqueue with `.delay()` and poll the database.
    """
    require_postgres()
    require_redis()
    settings.CELERY_TASK_ALWAYS_EAGER = False
    from config.celery import app

    app.conf.task_always_eager = False
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "CELERY_TASK_ALWAYS_EAGER": "0",
    }
    app.control.purge()
    try:
        with celery_worker(env, log_name=f"test-worker-{os.getpid()}.log"):
            yield lambda: None
    finally:
        app.conf.task_always_eager = True


def wait_for(predicate: Callable[[], object], timeout: float = 20.0, interval: float = 0.1) -> object:
    """Poll until predicate() is truthy; the value is returned. Fails with the last value."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    assert value, f"condition not met within {timeout} s"
    return value


def sign_in(page, user) -> None:
    """Sign `user` in to the live server in this browser page (a session cookie, no login form); any
    earlier session in the page's context is dropped first."""
    client = Client()
    client.force_login(user)
    page.context.clear_cookies()
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": page.base_url}])


def sign_in_with_form(page, email: str, *, at: str) -> None:
    """Sign in through the staff sign-in form that `at` (e.g. "/console/", "/admin/login/") leads to, as a person
    does, with the password every test user has, and wait to land back on `at`'s page."""
    page.goto(page.base_url + at)
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", "pw-for-tests-123")
    page.click("input[type=submit]")
    page.wait_for_url("**/console/" if at == "/console/" else "**/admin/")


@pytest.fixture
def browser_page(live_server) -> Iterator:
    """A Playwright page in Debian's headless Chromium, pointed at the live test server."""
    executable = chromium_path()
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop
    from django.db import connections
    from playwright.sync_api import sync_playwright

    connections.close_all()  # else the pre-Playwright connection is orphaned and blocks dropping the test DB
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=executable,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page()
        page.base_url = live_server.url
        try:
            yield page
        finally:
            browser.close()
            # Playwright's greenlets give Django a fresh connection context; close what it opened.
            connections.close_all()
            if previous is None:
                os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
            else:
                os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous
