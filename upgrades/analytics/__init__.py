"""Analytics (issue 18): revenue metrics from billing's LicenseChange history, computed with pandas.

Nothing imports this package; it reads billing, accounts and upgrades.offers through their models and selectors.
"""
