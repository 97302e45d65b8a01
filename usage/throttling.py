"""The high-volume endpoints (events, entitlement checks) count their requests apart from the
rest of the API, at the same configured rate, so bulk ingest can't starve a vendor's account calls."""

from accounts.api_auth import ApiKeyRateThrottle


class ApiKeyWindowThrottle(ApiKeyRateThrottle):
    bucket = "usage"
