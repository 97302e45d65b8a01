"""Real services for tests: skip locally when absent, fail under REQUIRE_SERVICES=1 (CI)."""

from __future__ import annotations

import os
import shutil
import socket

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
