from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from accounts import views as accounts_views
from accounts.api import AccountViewSet
from billing import urls as billing_urls
from catalog import urls as catalog_urls
from config import views
from messaging import urls as messaging_urls
from upgrades.analytics import urls as analytics_urls
from upgrades.experiments import urls as experiments_urls
from upgrades.offers import urls as offers_urls
from upgrades.portal import urls as portal_urls
from upgrades.rules import urls as rules_urls
from usage import urls as usage_urls

router = SimpleRouter(trailing_slash=False)
router.register("accounts", AccountViewSet, basename="account")

api_v1 = [
    path("schema/", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]), name="schema"),
    path(
        "docs/",
        SpectacularSwaggerView.as_view(url_name="schema", authentication_classes=[], permission_classes=[]),
        name="api-docs",
    ),
    *catalog_urls.api_urlpatterns,
    *billing_urls.api_urlpatterns,
    *usage_urls.api_urlpatterns,
    *rules_urls.api_urlpatterns,
    *messaging_urls.api_urlpatterns,
    *offers_urls.api_urlpatterns,
    *portal_urls.api_urlpatterns,
    *analytics_urls.api_urlpatterns,
    *experiments_urls.api_urlpatterns,
    *router.urls,
]

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", RedirectView.as_view(url=settings.STATIC_URL + "favicon.svg", permanent=True)),
    path("admin/password_reset/", auth_views.PasswordResetView.as_view(), name="admin_password_reset"),
    path("accounts/login/", accounts_views.login_redirect, name="login"),
    path("invitations/<str:token>/", accounts_views.invitation, name="invitation"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("portal/", include((portal_urls.urlpatterns, "portal"))),
    path("console/", include("upgrades.console.urls")),
    path("api/v1/", include(api_v1)),
    *catalog_urls.urlpatterns,
    *billing_urls.urlpatterns,
    *usage_urls.urlpatterns,
    *offers_urls.urlpatterns,
    *messaging_urls.urlpatterns,
    *analytics_urls.urlpatterns,
]

handler404 = "config.views.not_found"
