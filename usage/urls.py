"""URLs of the usage app: `api_urlpatterns` mount under /api/v1/, `urlpatterns` at the site root."""

api_urlpatterns: list = []
urlpatterns: list = []
