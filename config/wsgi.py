import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# Outside DEBUG, refuse to serve as a database role row-level security does not hold for (accounts/rls.py).
from accounts.rls import check_startup  # noqa: E402

check_startup()
