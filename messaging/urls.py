"""URLs of messaging: `api_urlpatterns` mount under /api/v1/, `urlpatterns` at the site root.

`accounts/<id>/prompts` is listed before the accounts router's `accounts/<id>` detail route.
"""

from django.urls import include, path

from messaging import views
from messaging.api import AccountPromptsViewSet, PromptEventsViewSet

api_urlpatterns: list = [
    path(
        "accounts/<str:external_id>/prompts",
        AccountPromptsViewSet.as_view({"get": "retrieve"}),
        name="messaging-account-prompts",
    ),
    path(
        "prompts/<str:prompt_id>/events",
        PromptEventsViewSet.as_view({"post": "create"}),
        name="messaging-prompt-events",
    ),
]

urlpatterns: list = [
    path("m/u/<str:token>", views.one_click_unsubscribe, name="messaging-unsubscribe"),
    path("m/preferences/<str:token>", views.preferences, name="messaging-preferences"),
    path("m/o/<str:token>.gif", views.open_pixel, name="messaging-open"),
    path("m/c/<str:token>", views.click, name="messaging-click"),
    # django-anymail's provider webhooks (bounces, complaints), verified by anymail; see messaging/receivers.py.
    path("m/anymail/", include("anymail.urls")),
]
