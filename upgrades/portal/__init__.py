"""The customer's self-serve portal (issue 15): sessions without passwords, plan, compare, offer, trial.

Sits on top of upgrades.offers and upgrades.rules (and billing, usage, catalog, accounts, messaging);
nothing imports it. Views are thin: they resolve the portal session (tokens.py), read through
selectors.py, and call the offers services.
"""
