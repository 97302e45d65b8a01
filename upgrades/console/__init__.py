"""The CSM console (issue 17): worklist, account 360, proposals and renewal packets, playbooks, tasks.

A sub-domain package of upgrades: it may import upgrades.offers, upgrades.rules, billing, usage, catalog,
accounts and messaging; nothing imports it.
"""
