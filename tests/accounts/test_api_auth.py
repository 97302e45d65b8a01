import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services
from accounts.models import ApiKey, CustomerAccount

pytestmark = pytest.mark.django_db

BODY = {"external_id": "new-1", "name": "New"}


def _post(client):
    return client.post("/api/v1/accounts", BODY, format="json")


def _assert_nothing_written(world):
    assert not CustomerAccount.objects.filter(external_id="new-1").exists()


def test_missing_key_is_401_json(world_a):
    response = _post(APIClient())
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")
    _assert_nothing_written(world_a)


@pytest.mark.parametrize("header", ["Bearer", "Token abc", "Bearer tw_nope_nope", "Bearer not-a-key", "Bearer a b"])
def test_malformed_or_unknown_key_is_401_json(world_a, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = _post(client)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    _assert_nothing_written(world_a)


def test_right_prefix_wrong_secret_is_401(world_a):
    key, secret = services.create_api_key(world_a.tenant, name="k", scopes=["write"], actor="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret[:-2]}xx")
    assert _post(client).status_code == 401


def test_revoked_key_is_401_and_writes_nothing(world_a):
    key, secret = services.create_api_key(world_a.tenant, name="k", scopes=["write"], actor="test")
    services.revoke_api_key(world_a.tenant, api_key=key, actor="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = _post(client)
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]
    _assert_nothing_written(world_a)


def test_wrong_scope_is_403_and_writes_nothing(world_a):
    response = _post(world_a.api("read", "ingest"))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert "write" in response.json()["error"]["message"]
    _assert_nothing_written(world_a)
    assert world_a.api("ingest").get("/api/v1/accounts").status_code == 403


def test_key_secret_is_stored_hashed_and_last_use_recorded(world_a):
    key, secret = services.create_api_key(world_a.tenant, name="k", scopes=["read"], actor="test")
    assert secret not in key.hashed_secret and len(key.hashed_secret) == 64
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/api/v1/accounts").status_code == 200
    key.refresh_from_db()
    assert key.last_used_at is not None and key.last_used_at <= timezone.now()


def test_unknown_scope_is_refused_at_creation(world_a):
    with pytest.raises(services.InvalidInput):
        services.create_api_key(world_a.tenant, name="k", scopes=["admin"], actor="test")
    assert not ApiKey.objects.filter(name="k").exists()


def test_throttle_answers_429_json(world_a):
    from django.core.cache import cache

    from accounts.api_auth import ApiKeyRateThrottle

    original = ApiKeyRateThrottle.THROTTLE_RATES
    ApiKeyRateThrottle.THROTTLE_RATES = {"api_key": "2/min"}
    cache.clear()
    try:
        api = world_a.api("read")
        codes = [api.get("/api/v1/accounts").status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        last = api.get("/api/v1/accounts")
        assert last.json()["error"]["code"] == "throttled"
        assert "Retry-After" in last
    finally:
        ApiKeyRateThrottle.THROTTLE_RATES = original
        cache.clear()


def _client(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_a_key_revoked_after_use_is_refused_at_once(world_a):
    # The first call remembers the key's tenant (accounts.selectors); the key itself is read every time.
    key, secret = services.create_api_key(world_a.tenant, name="k", scopes=["read"], actor="test")
    client = _client(secret)
    assert client.get("/api/v1/accounts").status_code == 200
    services.revoke_api_key(world_a.tenant, api_key=key, actor="test")
    response = client.get("/api/v1/accounts")
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]["message"]


def test_a_key_deleted_after_use_is_unknown(world_a):
    key, secret = services.create_api_key(world_a.tenant, name="k", scopes=["read"], actor="test")
    client = _client(secret)
    assert client.get("/api/v1/accounts").status_code == 200
    ApiKey.objects.filter(pk=key.pk).delete()
    assert client.get("/api/v1/accounts").status_code == 401


def test_a_wrong_remembered_tenant_falls_back_to_the_database(two_tenants):
    from accounts import selectors

    a, b = two_tenants
    key, secret = services.create_api_key(a.tenant, name="k", scopes=["read"], actor="test")
    selectors._KEY_TENANTS[key.prefix] = b.tenant.pk  # a stale hint (a prefix can't move; belt and braces)
    response = _client(secret).get("/api/v1/accounts")
    assert response.status_code == 200
    assert [row["external_id"] for row in response.json()["results"]] == ["acct-1"]
    assert response.json()["results"][0]["name"] == a.account.name
    assert selectors._KEY_TENANTS[key.prefix] == a.tenant.pk


def test_a_wrong_secret_is_not_remembered(world_a):
    from accounts import selectors

    key, secret = services.create_api_key(world_a.tenant, name="k", scopes=["read"], actor="test")
    assert _client(f"{secret[:-2]}xx").get("/api/v1/accounts").status_code == 401
    assert key.prefix not in selectors._KEY_TENANTS


def test_a_warm_call_reads_only_the_key_inside_its_tenant(world_a, django_assert_num_queries):
    key, secret = services.create_api_key(world_a.tenant, name="k", scopes=["read"], actor="test")
    client = _client(secret)
    assert client.get("/api/v1/accounts/acct-1").status_code == 200
    with django_assert_num_queries(2) as queries:  # the key, then the account
        assert client.get("/api/v1/accounts/acct-1").status_code == 200
    sql = [q["sql"] for q in queries.captured_queries]
    assert "accounts_apikey" in sql[0] and "tw_tenant_ids" not in " ".join(sql)


def test_the_throttle_window_counts_once_per_request_and_expires(world_a, settings):
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    from accounts.api_auth import ApiKeyRateThrottle

    cache = caches["default"]
    if not isinstance(cache, RedisCache):
        pytest.skip("the one-round-trip counter is Redis's; other caches use incr/add")
    original = ApiKeyRateThrottle.THROTTLE_RATES
    ApiKeyRateThrottle.THROTTLE_RATES = {"api_key": "100/min"}
    cache.clear()
    try:
        key, secret = services.create_api_key(world_a.tenant, name="k", scopes=["read"], actor="test")
        client = _client(secret)
        for _ in range(3):
            assert client.get("/api/v1/accounts").status_code == 200
        redis = cache._cache.get_client(write=False)
        names = [n.decode() for n in redis.keys(f"*throttle:api:{key.pk}:*")]
        assert len(names) == 1
        assert cache.get(names[0].split(":", 2)[2]) == 3
        assert 0 < redis.ttl(names[0]) <= 65
    finally:
        ApiKeyRateThrottle.THROTTLE_RATES = original
        cache.clear()
