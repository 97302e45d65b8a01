"""The high-volume endpoints (events, entitlement checks) count their requests apart from the
rest of the API, at the same configured rate, so bulk ingest can't starve a vendor's account calls.

Like its base it fails open when the cache (Redis) is down: counted per process, one warning a minute,
so ingest and checks keep answering on PostgreSQL alone."""

from accounts.api_auth import ApiKeyRateThrottle


class ApiKeyWindowThrottle(ApiKeyRateThrottle):
    bucket = "usage"
