"""Defect 15, with the fault injected: a real Celery worker (prefork, one child) sends an invitation over
real SMTP, and its child is killed with SIGKILL the moment the mail server has the message, before the
task returns. The broker redelivers the task (acks_late + reject_on_worker_lost) to a fresh child; the
invitation must not be sent a second time."""

from __future__ import annotations

import email
import os
import signal
import time
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from accounts import invitations
from accounts.models import Membership, Role
from tests.conftest import _database_url, wait_for
from tests.services import celery_worker, free_port, require_postgres, require_redis

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(p) for p in text)
    return found


class KillingInbox:
    """Keeps each message; on the first one, kills the worker child that is sending it before answering 250."""

    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []
        self.worker_pid = 0
        self.killed: list[int] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(email.message_from_bytes(envelope.content))
        if not self.killed:
            for child in _children(self.worker_pid):
                os.kill(child, signal.SIGKILL)
                self.killed.append(child)
        return "250 OK"


@pytest.fixture
def prefork_worker(transactional_db, settings):
    require_postgres()
    require_redis()
    inbox = KillingInbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.CELERY_TASK_ALWAYS_EAGER = False
    from config.celery import app

    app.conf.task_always_eager = False
    app.control.purge()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",  # the test settings pin email to memory
        "DEBUG": "1",
        "DATABASE_URL": _database_url(),
        "DATABASE_OWNER_URL": "",
        "REDIS_URL": settings.REDIS_URL,
        "EMAIL_URL": f"smtp://127.0.0.1:{port}",
        "SITE_URL": "http://testserver",
        "CELERY_TASK_ALWAYS_EAGER": "0",
    }
    try:
        with celery_worker(env, log_name=f"test-prefork-worker-{os.getpid()}.log", pool="prefork") as (proc, log_path):
            inbox.worker_pid = proc.pid
            yield inbox, log_path
    finally:
        controller.stop()
        app.conf.task_always_eager = True


def test_killing_the_worker_child_after_the_invitation_left_does_not_send_it_twice(world_a, prefork_worker):
    inbox, log_path = prefork_worker
    membership = invitations.add_member(world_a.tenant, email="once@tenant-a.test", role=Role.CSM, actor="test")

    # The send, the kill, the redelivery to a fresh child, and that child's run to completion.
    wait_for(lambda: inbox.killed, timeout=60)
    wait_for(lambda: "send_invitation" in log_path.read_text() and "succeeded" in log_path.read_text(), timeout=60)
    log = log_path.read_text()
    assert "signal 9" in log or "WorkerLostError" in log, log  # the first run really died

    assert len(inbox.messages) == 1
    assert inbox.messages[0]["To"] == "once@tenant-a.test"
    membership = Membership.all_objects.get(pk=membership.pk)
    # The email may have left (it did): the row says so and nothing sends it again by itself.
    assert membership.invitation_send_started_at is not None and membership.invitation_sent_at is None
    time.sleep(1)  # anything still queued would have run by now
    assert len(inbox.messages) == 1
    # The link it carries works: the token's hash was committed before the send.
    link = inbox.messages[0].get_payload(decode=True).decode().split("http://testserver", 1)[1].split()[0]
    assert invitations.find_invitation(link.strip("/").split("/")[1]).pk == membership.pk
