"""Django finds `<app>.admin`; the upgrades app's admin pages live in its sub-domain packages."""

from upgrades.experiments import admin as experiments_admin  # noqa: F401
from upgrades.offers import admin as offers_admin  # noqa: F401
from upgrades.portal import admin as portal_admin  # noqa: F401
from upgrades.rules import admin as rules_admin  # noqa: F401
