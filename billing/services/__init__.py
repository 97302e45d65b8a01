"""Billing writes, split by sub-domain (STYLE.md: a package once a module passes ~400 lines).

- `licenses`: provisioning, revoke / suspend / restore, cancel and reactivate, grants, renewal
- `plan_changes`: quote -> confirm -> Stripe -> settle / fail / retry / cancel, downgrades at period end
- `catalog_sync`: published catalog prices in Stripe
- `stripe_accounts`: the tenant's encrypted Stripe keys and its client
- `webhooks`: verified Stripe events, stored by id, processed once
"""
