"""The Stripe stand-in as a subprocess on a free port, and helpers to drive it like a test would drive Stripe."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from billing.stripe_client import StripeGateway
from tests.services import free_port, port_open

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class StandIn:
    url: str

    def flush(self) -> None:
        requests.delete(f"{self.url}/_config/data", timeout=5).raise_for_status()

    def register_webhook(self, hook_id: str, *, url: str, secret: str, api_key: str) -> None:
        requests.post(
            f"{self.url}/_config/webhooks/{hook_id}", data={"url": url, "secret": secret, "api_key": api_key}, timeout=5
        ).raise_for_status()

    def set_card(self, customer_id: str, number: str) -> None:
        requests.post(
            f"{self.url}/_standin/customers/{customer_id}/card", data={"number": number}, timeout=5
        ).raise_for_status()

    def events(self, type_: str | None = None) -> list[dict]:
        params = {"type": type_} if type_ else {}
        return requests.get(f"{self.url}/_standin/events", params=params, timeout=5).json()["data"]

    def redeliver(self, event_id: str) -> None:
        requests.post(f"{self.url}/_standin/events/{event_id}/deliver", timeout=20).raise_for_status()

    def advance(self, subscription_id: str) -> dict:
        return requests.post(f"{self.url}/_standin/subscriptions/{subscription_id}/advance", timeout=10).json()

    def get(self, path: str, api_key: str, **params) -> dict:
        response = requests.get(
            f"{self.url}{path}", params=params, headers={"Authorization": f"Bearer {api_key}"}, timeout=10
        )
        return response.json()

    def invoices(self, api_key: str, customer: str) -> list[dict]:
        return self.get("/v1/invoices", api_key, customer=customer, limit=100)["data"]

    def charges(self, api_key: str, customer: str) -> list[dict]:
        return self.get("/v1/charges", api_key, customer=customer, limit=100)["data"]


@pytest.fixture(scope="session")
def stripe_standin() -> Iterator[StandIn]:
    """`python -m devtools.stripe_standin` on a free port, empty, for the whole session."""
    port = free_port()
    log = open(ROOT / "var" / f"test-stripe-standin-{os.getpid()}.log", "w")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devtools.stripe_standin",
            "--port",
            str(port),
            "--from-scratch",
            "--webhook-delay",
            "0.2",
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while not port_open("127.0.0.1", port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("The Stripe stand-in did not start; see var/test-stripe-standin-*.log")
            time.sleep(0.1)
        yield StandIn(url=f"http://127.0.0.1:{port}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture
def standin(stripe_standin: StandIn, settings, monkeypatch) -> StandIn:
    """The stand-in, emptied, with this process and any worker started afterwards pointed at it."""
    stripe_standin.flush()
    settings.STRIPE_API_BASE = stripe_standin.url
    monkeypatch.setenv("STRIPE_API_BASE", stripe_standin.url)
    return stripe_standin


def gateway(key: str, standin: StandIn) -> StripeGateway:
    return StripeGateway(key, api_base=standin.url)
