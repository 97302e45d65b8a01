"""Who may do what in the console. Same staff sign-in and tenant as the admin (accounts.middleware sets
request.tenant and request.membership); another tenant's ids answer 404 (selectors), a missing capability 403.

  read (every member: CSM, PM, analyst, owner)      Capability.VIEW
  work accounts (CSM, owner): tasks, notes, proposals, outreach, trials, grants   Capability.REVIEW_OFFERS
  manage playbooks (PM, owner)                       Capability.EDIT_RULES
  approve a discount beyond policy                   DiscountPolicy.exception_approver_role, or owner
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden

from accounts.errors import NotFound
from accounts.models import Capability

READ: str = str(Capability.VIEW)
WORK: str = str(Capability.REVIEW_OFFERS)
PLAYBOOKS: str = str(Capability.EDIT_RULES)


def can(request: HttpRequest, capability: str) -> bool:
    membership = getattr(request, "membership", None)
    return membership is not None and membership.can(capability)


def console_view(capability: str = READ, *, methods: tuple[str, ...] = ("GET",)) -> Callable:
    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path(), "/admin/login/")
            if request.method not in methods:
                return HttpResponse(status=405, headers={"Allow": ", ".join(methods)})
            if getattr(request, "membership", None) is None or getattr(request, "tenant", None) is None:
                return HttpResponseForbidden("You are not a member of this tenant.")
            if not can(request, capability):
                return HttpResponseForbidden("Your role may not do this.")
            try:
                return view(request, *args, **kwargs)
            except NotFound as exc:
                raise Http404(str(exc)) from None

        return wrapped

    return decorator
