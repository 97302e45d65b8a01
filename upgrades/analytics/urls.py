"""URLs of analytics: `api_urlpatterns` mount under /api/v1/, `urlpatterns` at the site root."""

from django.urls import path

from upgrades.analytics import views, views_loop
from upgrades.analytics.api import RevenueMetricsViewSet

api_urlpatterns: list = [
    path("metrics/revenue", RevenueMetricsViewSet.as_view({"get": "retrieve"}), name="metrics-revenue"),
]
urlpatterns: list = [
    path("analytics/", views.dashboard, name="analytics-dashboard"),
    path("analytics/board/", views.board, name="analytics-board"),
    path("analytics/feedback/answer/", views_loop.answer, name="analytics-answer-feedback"),
    path("analytics/<slug:name>.csv", views.export_csv, name="analytics-csv"),
]
