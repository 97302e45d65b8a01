import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Ids are reused between tests (rolled-back transactions): cached answers must not carry over."""
    cache.clear()
    yield
    cache.clear()
