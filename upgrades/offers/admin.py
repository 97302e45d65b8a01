"""The offers admin pages: settings (governed), offers, trials and feedback. Registered on import."""

from upgrades.offers import admin_offers, admin_settings, admin_trials

__all__ = ["admin_offers", "admin_settings", "admin_trials"]
