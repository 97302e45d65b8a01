"""The base every tenant-scoped /api/v1/ view stands on.

Hazard: a view that reads tenant data without going through `get_queryset()` or a
selector that takes `request.tenant` can leak across tenants. `TenantScopedViewSet`
refuses subclasses that override `get_queryset`/`get_object`, and filters whatever
`tenant_queryset()` returns to the request's tenant itself, so a subclass that forgets
(or returns an unscoped queryset) still cannot leak.

Every write (POST, PATCH, PUT, DELETE) honours `Idempotency-Key` (accounts/idempotency.py):
claimed in `initial()` once the tenant is known, the answer stored in `finalize_response()`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured, RequestDataTooBig
from django.db.models import QuerySet
from django.http import HttpResponseBase
from django.http.request import RawPostDataException
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions, serializers, viewsets
from rest_framework.metadata import SimpleMetadata
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import idempotency
from accounts.api_auth import DEFAULT_SCOPE_MAP
from accounts.api_errors import json_not_found
from accounts.errors import TierwiseError
from accounts.models import ApiKey, Tenant
from accounts.tenancy import activate_tenant

__all__ = ["DEFAULT_SCOPE_MAP", "TenantScopedSchema", "TenantScopedViewSet", "json_not_found"]


IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    name=idempotency.HEADER,
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "Makes the request safe to retry: the first answer under a key is stored and replayed byte for byte "
        "for 24 hours (with `Idempotent-Replayed: true`). The same key with a different request answers 422; "
        "while the first request still runs, 409. Keys are scoped to the API key; 1 to 255 printable ASCII "
        "characters (a UUID is a good choice)."
    ),
    pattern=r"^[ -~]{1,255}$",
)


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.JSONField(allow_null=True)


class ErrorSerializer(serializers.Serializer):
    """The one error shape of the API."""

    error = ErrorBodySerializer()


_ERRORS_ALL = {
    "400": "Invalid input (field and reason in `details`).",
    "401": "No, unknown or revoked API key.",
    "403": "The API key lacks the scope this operation needs.",
    "404": "Not found (missing and other tenants' ids alike).",
    "429": "Rate limited; see `Retry-After`.",
}
_ERRORS_WRITE = {
    "409": "Conflict, or a request with the same `Idempotency-Key` is still running.",
    "413": "The body is too large.",
    "422": "The `Idempotency-Key` was already used with a different request.",
}


class TenantScopedSchema(AutoSchema):
    """Documents what the base adds to every operation: `Idempotency-Key` on writes and the error answers."""

    def get_override_parameters(self) -> list:
        params = list(super().get_override_parameters())
        if self.method in idempotency.METHODS:
            params.append(IDEMPOTENCY_KEY_PARAMETER)
        return params

    def _get_response_bodies(self, direction: Any = "response") -> dict:
        responses = super()._get_response_bodies(direction)
        errors = dict(_ERRORS_ALL)
        if self.method in idempotency.METHODS:
            errors.update(_ERRORS_WRITE)
        for code, description in errors.items():
            if code not in responses:
                response = self._get_response_for_code(ErrorSerializer, code, direction=direction)
                response["description"] = description
                responses[code] = response
        return responses


class _Metadata(SimpleMetadata):
    """OPTIONS answers name, description and media types. DRF's default also describes each write's
    input by instantiating `get_serializer()`, which these views don't use (they validate in the
    action), so it failed as a 500; the OpenAPI document is where inputs are described."""

    def determine_actions(self, request: Request, view: Any) -> dict:
        return {}


class TenantScopedViewSet(viewsets.GenericViewSet):
    """Resolves the tenant once from the API key and scopes every query to it.

    Subclasses implement `tenant_queryset()` (built from a selector); they may not
    override `get_queryset` or `get_object`. Whatever `tenant_queryset()` returns is
    filtered to `self.tenant` here, and its model must have a `tenant` field.
    """

    scope_map: ClassVar[dict[str, str]] = DEFAULT_SCOPE_MAP
    schema = TenantScopedSchema()
    metadata_class = _Metadata
    tenant: Tenant
    _idempotency_claim: idempotency.Claim | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in ("get_queryset", "get_object"):
            if name in cls.__dict__:
                raise TypeError(f"{cls.__name__} may not override {name}; implement tenant_queryset()")

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authentication, scope, throttle
        self.bind_tenant(request, request.auth.tenant)
        self._claim_idempotency_key(request)

    def bind_tenant(self, request: Request, tenant: Tenant) -> None:
        """THE one place an API request's tenant is set, right after API key authentication.

        Everything after this (idempotency claim, the action, its queries) runs for `tenant`;
        a database-level tenant context (row-level security) is bound here too.
        """
        self.tenant = tenant
        request.tenant = tenant
        activate_tenant(tenant)  # row-level security: every query of this request runs in this tenant

    # --- querysets ----------------------------------------------------------------------

    def tenant_queryset(self) -> QuerySet:
        raise NotImplementedError

    def get_queryset(self) -> QuerySet:
        queryset = self.tenant_queryset()
        try:
            queryset.model._meta.get_field("tenant")
        except FieldDoesNotExist:
            raise ImproperlyConfigured(
                f"{type(self).__name__}.tenant_queryset() returns {queryset.model.__name__}, which has no tenant"
            ) from None
        return queryset.filter(tenant=self.tenant)

    def get_object(self) -> Any:
        lookup = self.kwargs[self.lookup_url_kwarg or self.lookup_field]
        obj = self.get_queryset().filter(**{self.lookup_field: lookup}).first()
        if obj is None:
            raise exceptions.NotFound("Not found.")
        return obj

    @property
    def actor(self) -> ApiKey:
        return self.request.auth

    # --- Idempotency-Key ----------------------------------------------------------------

    def _claim_idempotency_key(self, request: Request) -> None:
        if request.method not in idempotency.METHODS:
            return
        key = idempotency.parse_key(request.META.get(idempotency.META_KEY))
        if key is None:
            return
        try:
            body = request._request.body
        except RawPostDataException:  # the stream was already read (never, before the action runs)
            body = b""
        except RequestDataTooBig:
            raise PayloadTooLarge("The body is too large.", code="payload_too_large") from None
        outcome = idempotency.claim(
            self.tenant,
            api_key=request.auth,
            key=key,
            method=request.method,
            path=request.get_full_path(),
            body=body,
        )
        if isinstance(outcome, idempotency.Replay):
            raise _Replayed(outcome)
        self._idempotency_claim = outcome

    def handle_exception(self, exc: Exception) -> Any:
        if isinstance(exc, _Replayed):
            return exc.replay.response()
        try:
            return super().handle_exception(exc)
        except BaseException:
            self._release_idempotency_key()  # an unhandled error (a 500): the retry must run again
            raise

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        claim, self._idempotency_claim = self._idempotency_claim, None
        if claim is None:
            return response
        try:
            if isinstance(response, Response):
                response.render()
            if response.status_code >= 500 or response.streaming or not isinstance(response, HttpResponseBase):
                idempotency.release(self.tenant, claim)
            else:
                idempotency.complete(
                    self.tenant,
                    claim,
                    status_code=response.status_code,
                    content_type=response.get("Content-Type", ""),
                    body=response.content,
                )
        except BaseException:
            idempotency.release(self.tenant, claim)
            raise
        return response

    def _release_idempotency_key(self) -> None:
        claim, self._idempotency_claim = self._idempotency_claim, None
        if claim is not None:
            idempotency.release(self.tenant, claim)


class PayloadTooLarge(TierwiseError):
    status_code = 413
    default_code = "payload_too_large"


class _Replayed(Exception):
    """Carries a stored answer out of initial(): the action must not run again."""

    def __init__(self, replay: idempotency.Replay) -> None:
        super().__init__("replayed")
        self.replay = replay


def add_openapi_links(result: dict, generator: Any, request: Any, public: bool) -> dict:
    """drf-spectacular postprocessing hook: OpenAPI `links` from each create to what it created.

    A POST on `/things` whose answer carries the field named by the path parameter of
    `/things/{field}...` links to every operation there (POST /accounts -> GET, PATCH
    /accounts/{external_id}, its contacts and entitlements). Schemathesis' stateful phase
    follows these links, and clients' generators can too. Derived from the paths, so a new
    resource is linked without listing it here.
    """
    paths = result.get("paths", {})
    schemas = result.get("components", {}).get("schemas", {})
    for path, item in paths.items():
        post = item.get("post")
        if not post:
            continue
        for code, response in post.get("responses", {}).items():
            if not code.startswith("2"):
                continue
            ref = response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "")
            fields = set(schemas.get(ref.rsplit("/", 1)[-1], {}).get("properties", {}))
            links: dict[str, dict] = {}
            for target, target_item in paths.items():
                if not target.startswith(path + "/{"):
                    continue
                params = [part[1:-1] for part in target.split("/") if part.startswith("{") and part.endswith("}")]
                own = params[len([p for p in path.split("/") if p.startswith("{")]) :]
                if not own or not set(own) <= fields:
                    continue
                for method, operation in target_item.items():
                    if method not in {"get", "post", "patch", "put", "delete"} or "operationId" not in operation:
                        continue
                    parameters = {name: f"$response.body#/{name}" for name in own}
                    links[operation["operationId"]] = {
                        "operationId": operation["operationId"],
                        "parameters": parameters,
                    }
            if links:
                response["links"] = links
    return result
