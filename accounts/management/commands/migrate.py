"""`migrate`, as the owner: DATABASE_OWNER_URL's role when set (else DATABASE_URL's).

Django's own command, run on a connection whose credentials are swapped to the owner's (the database
name stays DATABASE_URL's, so a test database stays the test database). Its post_migrate handler
(accounts.rls) then enables and forces row-level security, creates the policies and grants the app
role (DATABASE_URL's user) what it needs.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import connections

from accounts import rls


class Command(DjangoMigrate):
    help = DjangoMigrate.help + " On PostgreSQL it connects as DATABASE_OWNER_URL's role when that is set."

    def handle(self, *args: Any, **options: Any) -> None:
        connection = connections[options["database"]]
        owner = getattr(settings, "DATABASE_OWNER", None)
        swapped = None
        if owner and options["database"] == "default" and rls.uses_rls(connection):
            swapped = connection.settings_dict
            connection.close()
            connection.settings_dict = {
                **swapped,
                **{key: owner[key] for key in ("USER", "PASSWORD", "HOST", "PORT") if key in owner},
            }
        try:
            with rls.migrating():
                super().handle(*args, **options)
        finally:
            if swapped is not None:
                connection.close()
                connection.settings_dict = swapped
