"""Trigger rules, signals and scores (a sub-domain of upgrades; imports nothing of offers/portal/console)."""
