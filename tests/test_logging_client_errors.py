"""An ordinary 403 or 404 is one log line; a 500 keeps its traceback (config/logging.py, settings.LOGGING)."""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.conf import settings
from django.utils.module_loading import import_string

pytestmark = pytest.mark.django_db


def console_handler(stream: io.StringIO) -> logging.Handler:
    """A handler built the way settings.LOGGING builds the console one: same formatter, same filters."""
    config = settings.LOGGING
    handler = logging.StreamHandler(stream)
    handler.setFormatter(import_string(config["formatters"]["json"]["()"])())
    for name in config["handlers"]["console"].get("filters", []):
        handler.addFilter(import_string(config["filters"][name]["()"])())
    return handler


@pytest.fixture
def request_log():
    stream = io.StringIO()
    handler = console_handler(stream)
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    yield stream
    logger.removeHandler(handler)


def test_a_403_in_the_admin_is_logged_as_one_line_without_a_traceback(world_a, request_log):
    response = world_a.staff_client("analyst").get("/admin/catalog/tier/add/")
    assert response.status_code == 403
    lines = [line for line in request_log.getvalue().splitlines() if line.strip()]
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["level"] == "WARNING" and "Forbidden" in record["message"]
    assert "exc_info" not in record and "Traceback" not in lines[0]


def test_a_server_error_keeps_its_traceback():
    stream = io.StringIO()
    handler = console_handler(stream)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        record = logging.LogRecord(
            "django.request", logging.ERROR, __file__, 1, "Internal Server Error", None, sys.exc_info()
        )
    record.status_code = 500
    handler.handle(record)
    assert "Traceback" in json.loads(stream.getvalue())["exc_info"]
