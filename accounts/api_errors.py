"""The one error shape of the API: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from accounts.errors import TierwiseError


def _error(code: str, message: str, details: Any = None, status: int = 400, headers: dict | None = None) -> Response:
    body = {"error": {"code": code, "message": message, "details": details}}
    return Response(body, status=status, headers=headers)


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """Every API error has one shape: {"error": {"code", "message", "details"}}."""
    if isinstance(exc, TierwiseError):
        return _error(exc.code, exc.message, exc.details, exc.status_code)
    if isinstance(exc, DjangoValidationError):
        details = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return _error("invalid", "Invalid input.", details)
    if isinstance(exc, Http404):
        return _error("not_found", "Not found.", None, 404)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return _error("invalid", "Invalid input.", details, 400)
    code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
    if not isinstance(code, str):
        code = "error"
    message = str(getattr(exc, "detail", exc))
    headers = {k: v for k, v in response.items()}
    return _error(code, message, None, response.status_code, headers)


def json_not_found(request: Any, exception: Exception | None = None) -> JsonResponse:
    """Django's 404 for /api/ paths outside any view (unknown URL) is JSON too."""
    return JsonResponse({"error": {"code": "not_found", "message": "Not found.", "details": None}}, status=404)
