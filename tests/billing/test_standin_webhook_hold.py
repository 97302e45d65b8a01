"""The stand-in's webhook hold: what `make run` uses so the seed's events reach the site once it is up,
after the seed committed, instead of failing and being retried while it seeds."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

pytestmark = [pytest.mark.integration]

KEY = "sk_test_hold_tests"


class Receiver:
    def __init__(self) -> None:
        self.events: list[bytes] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                receiver.events.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver(standin) -> Iterator[Receiver]:
    found = Receiver()
    standin.register_webhook("hold-tests", url=found.url, secret="whsec_hold", api_key=KEY)
    try:
        yield found
    finally:
        found.server.shutdown()
        standin.flush()  # also releases any hold a failing test left


def post(standin, path: str, **data) -> dict:
    response = requests.post(f"{standin.url}{path}", data=data, headers={"Authorization": f"Bearer {KEY}"}, timeout=10)
    response.raise_for_status()
    return response.json()


def holds_now(standin) -> dict:
    return requests.get(f"{standin.url}/_standin/webhooks/holds", timeout=5).json()


def customer_created(receiver: Receiver) -> list[bytes]:
    return [e for e in receiver.events if b'"customer.created"' in e]


def wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_held_events_wait_and_arrive_once_each_when_released(standin, receiver):
    holds = post(standin, "/_standin/webhooks/hold", name="seed")
    assert holds["holds"] == ["seed"]
    ids = [post(standin, "/v1/customers", email=f"c{i}@example.test")["id"] for i in range(3)]
    assert wait_until(lambda: holds_now(standin)["waiting"] >= 3)
    time.sleep(0.6)  # three times the fixture's webhook delay: nothing may arrive while held
    assert customer_created(receiver) == []

    assert post(standin, "/_standin/webhooks/release", name="seed")["holds"] == []
    assert wait_until(lambda: len(customer_created(receiver)) == 3)
    time.sleep(0.5)
    delivered = customer_created(receiver)
    assert len(delivered) == 3 and all(any(i.encode() in e for e in delivered) for i in ids)


def test_every_holder_must_release_before_anything_is_sent(standin, receiver):
    post(standin, "/_standin/webhooks/hold", name="startup")
    post(standin, "/_standin/webhooks/hold", name="seed")
    post(standin, "/v1/customers", email="both@example.test")
    assert post(standin, "/_standin/webhooks/release", name="seed")["holds"] == ["startup"]
    time.sleep(0.6)
    assert customer_created(receiver) == []
    assert post(standin, "/_standin/webhooks/release", name="startup")["holds"] == []
    assert wait_until(lambda: len(customer_created(receiver)) == 1)


def test_without_a_hold_events_are_delivered_as_they_happen(standin, receiver):
    assert holds_now(standin) == {"holds": [], "waiting": 0}
    post(standin, "/v1/customers", email="now@example.test")
    assert wait_until(lambda: len(customer_created(receiver)) == 1)


def test_a_hold_needs_a_name(standin):
    response = requests.post(f"{standin.url}/_standin/webhooks/hold", data={}, timeout=5)
    assert response.status_code == 400
