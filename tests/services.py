"""Real services for tests: skip locally when absent, fail under REQUIRE_SERVICES=1 (CI)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def unavailable(reason: str) -> None:
    """Skip, or fail when CI says every integration and browser test must run."""
    if REQUIRE_SERVICES:
        pytest.fail(f"REQUIRE_SERVICES=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require_postgres() -> None:
    if not settings.IS_POSTGRES:
        unavailable("PostgreSQL is not configured (set DATABASE_URL)")


def require_redis() -> None:
    if not settings.REDIS_URL:
        unavailable("Redis is not configured (set REDIS_URL)")


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        unavailable("Chromium is not installed (apt-get install chromium)")
    return path


ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def celery_worker(env: dict[str, str], *, log_name: str, pool: str = "solo") -> Iterator[tuple[subprocess.Popen, Path]]:
    """A real `celery worker` process (one pool child) started with `env`; yields (process, log) once it is
    ready and stops it on exit. `pool="prefork"` gives a child a test can kill while its parent lives."""
    log_path = ROOT / "var" / log_name
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-P", pool, "-c", "1"]
            + ["--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while "ready" not in log_path.read_text():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("Celery worker did not start: " + log_path.read_text())
                time.sleep(0.2)
            yield proc, log_path
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
