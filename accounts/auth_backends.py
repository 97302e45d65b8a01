"""Sign-in throttling (django-axes) in front of Django's model backend."""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.http import HttpRequest


class SignInLockoutBackend(AxesStandaloneBackend):
    """Refuses a sign-in while its account or its address is locked out (settings.AXES_*).

    Every web sign-in (the admin's login form) passes its request. authenticate() without one comes from
    code, not a person at a login form (Django's test client, a shell): nothing to throttle by address,
    so it goes straight to the model backend instead of raising.
    """

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
