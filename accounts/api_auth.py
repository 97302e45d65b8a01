"""API key auth, scopes, throttling and pagination.

Kept apart from api_base (viewsets) because DRF imports these classes from settings
while its own views module loads.

"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions, pagination, parsers, permissions, throttling
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from accounts.models import ApiKey
from accounts.selectors import find_api_key
from accounts.services import touch_api_key
from accounts.tenancy import activate_tenant

logger = logging.getLogger(__name__)


class ApiKeyPrincipal:
    """Stands in for request.user on API calls: the caller is a key, not a person."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key
        self.pk = None

    def __str__(self) -> str:
        return f"api-key:{self.api_key.prefix}"


class ApiKeyAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[ApiKeyPrincipal, ApiKey] | None:
        header = get_authorization_header(request).split()
        if not header:
            return None
        if header[0].lower() != self.keyword or len(header) != 2:
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <API key>'.")
        try:
            presented = header[1].decode()
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("Malformed API key.") from exc
        key = find_api_key(presented)
        if key is None:
            raise exceptions.AuthenticationFailed("Unknown API key.")
        if not key.is_active:
            raise exceptions.AuthenticationFailed("This API key has been revoked.")
        activate_tenant(key.tenant_id)  # the rest of the request works in the key's tenant (row-level security)
        touch_api_key(key)
        return ApiKeyPrincipal(key), key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


DEFAULT_SCOPE_MAP: dict[str, str] = {
    "GET": "read",
    "HEAD": "read",
    "OPTIONS": "read",
    "POST": "write",
    "PUT": "write",
    "PATCH": "write",
    "DELETE": "write",
}


class HasApiScope(permissions.BasePermission):
    """The key must carry the scope the view's `scope_map` names for this method."""

    def has_permission(self, request: Request, view: Any) -> bool:
        key = request.auth
        if not isinstance(key, ApiKey):
            raise exceptions.NotAuthenticated("Send an API key: 'Authorization: Bearer <key>'.")
        method = request.method or ""
        if method.lower() not in getattr(view, "http_method_names", ()) or not hasattr(view, method.lower()):
            # No handler for the method (a GET on a POST-only endpoint): 405 with `Allow`, not a scope error.
            raise exceptions.MethodNotAllowed(method)
        scope_map = getattr(view, "scope_map", DEFAULT_SCOPE_MAP)
        needed = scope_map.get(method) or DEFAULT_SCOPE_MAP.get(method)
        if needed is None:
            raise exceptions.MethodNotAllowed(method)
        if needed not in key.scopes:
            raise exceptions.PermissionDenied(f"This API key lacks the {needed!r} scope.")
        return True


class ApiKeyRateThrottle(throttling.BaseThrottle):
    """Per-key rate limit in a fixed window counted with one cache INCR: O(1) at any rate.

    DRF's SimpleRateThrottle rewrites the list of every request time in the window on each
    call, which at thousands of requests a minute costs more than the request itself.
    `bucket` separates counters (the usage app counts its high-volume endpoints apart).

    Fails open: when the cache (Redis) is unreachable the limit is counted per process
    instead, and a warning is logged at most once a minute per process, so an outage of
    the cache never takes the API down with it.
    """

    scope = "api_key"
    bucket = "api"
    THROTTLE_RATES: dict[str, str] | None = None  # None: REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]

    def __init__(self) -> None:
        from rest_framework.settings import api_settings

        rate = (self.THROTTLE_RATES or api_settings.DEFAULT_THROTTLE_RATES).get(self.scope) or "0/m"
        num, period = rate.split("/")
        self.limit = int(num)
        self.duration = {"s": 1, "m": 60, "h": 3600, "d": 86400}[period[0]]
        self._wait: float | None = None

    def allow_request(self, request: Request, view: Any) -> bool:
        if not self.limit:
            return True
        who = request.auth.pk if isinstance(request.auth, ApiKey) else f"anon:{self.get_ident(request)}"
        now = time.time()
        window = int(now // self.duration)
        key = f"throttle:{self.bucket}:{who}:{window}"
        count = None
        if not _local_counter.cache_is_down():
            try:
                count = self._count_in_cache(key)
            except Exception as exc:  # the cache is down or unreachable: fail open to a local count
                _local_counter.mark_cache_down()
                _warn_cache_down(exc)
        if count is None:
            count = _local_counter.incr(key, expires_at=(window + 1) * self.duration + 5, now=now)
        if count <= self.limit:
            return True
        self._wait = (window + 1) * self.duration - now
        return False

    def _count_in_cache(self, key: str) -> int:
        from django.core.cache import caches
        from django.core.cache.backends.redis import RedisCache

        cache = caches["default"]  # the backend itself: `django.core.cache.cache` is a proxy
        if isinstance(cache, RedisCache):
            # One round trip: INCR and EXPIRE in one MULTI/EXEC. Django's incr() asks EXISTS first (two
            # round trips, three on a window's first request). The window's number is in the key, so
            # renewing its expiry on each request never keeps a finished window alive past duration + 5 s.
            name = cache.make_and_validate_key(key)
            pipe = cache._cache.get_client(name, write=True).pipeline(transaction=True)
            pipe.incr(name)
            pipe.expire(name, self.duration + 5)
            count, _ = pipe.execute()
            return int(count)
        try:
            return cache.incr(key)
        except ValueError:  # first request of the window
            return 1 if cache.add(key, 1, timeout=self.duration + 5) else cache.incr(key)

    def wait(self) -> float | None:
        return self._wait


class _LocalCounter:
    """Per-process fixed-window counters, used only while the shared cache is unreachable.

    After a failure the cache is not tried again for `RETRY_CACHE_AFTER` seconds, so an
    unreachable (not refusing) Redis costs one connect timeout per few seconds, not one per request.
    """

    RETRY_CACHE_AFTER = 5.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, float]] = {}
        self._down_until = 0.0

    def cache_is_down(self) -> bool:
        return time.monotonic() < self._down_until

    def mark_cache_down(self) -> None:
        self._down_until = time.monotonic() + self.RETRY_CACHE_AFTER

    def incr(self, key: str, *, expires_at: float, now: float) -> int:
        with self._lock:
            if len(self._counts) > 10_000:  # drop finished windows; bounded memory
                self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
            count, _ = self._counts.get(key, (0, expires_at))
            self._counts[key] = (count + 1, expires_at)
            return count + 1

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()
            self._down_until = 0.0


_local_counter = _LocalCounter()
_WARN_EVERY_SECONDS = 60.0
_last_warning_at: float | None = None


def _warn_cache_down(exc: Exception) -> None:
    """One warning a minute per process, not one per request."""
    global _last_warning_at
    now = time.monotonic()
    if _last_warning_at is not None and now - _last_warning_at < _WARN_EVERY_SECONDS:
        return
    _last_warning_at = now
    logger.warning(
        "API throttle: the cache is unreachable (%s: %s); counting rate limits per process until it is back",
        type(exc).__name__,
        exc,
    )


class JSONParser(parsers.JSONParser):
    """DRF's parser, except that absurdly deep nesting is a 400: json.loads raises RecursionError
    (not ValueError) there, which DRF would let through as a 500."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from exc


class Pagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request: Any) -> int | None:  # `?limit=` is a synonym of the documented `?page_size=`
        raw = request.query_params.get(self.page_size_query_param) or request.query_params.get("limit") or ""
        return min(int(raw), self.max_page_size) if raw.isascii() and raw.isdigit() and int(raw) else self.page_size


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Documents the bearer API key in the OpenAPI schema."""

    target_class = "accounts.api_auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict:
        return {"type": "http", "scheme": "bearer", "description": "A tenant API key: `tw_<prefix>_<secret>`."}
