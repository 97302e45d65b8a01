"""Dev/test-only Stripe stand-in: localstripe, in process, behind a layer that speaks today's API.

    python -m devtools.stripe_standin --port 8420 [--state-file var/stripe-standin.pickle | --from-scratch]
                                      [--hold-webhooks NAME]

Production code never talks to this differently from Stripe: it sends the current API
(the version the pinned `stripe` library speaks) and this layer answers it. localstripe
(an older dialect: Plans, one item per subscription, `prorate`, no `payment_behavior`,
a proration that credits the whole last invoice) keeps customers, payment methods,
products, payment intents and charges, and its card simulation (declines, 3-D Secure).
This layer owns what localstripe gets wrong or lacks:

- Prices (`/v1/prices`, with `lookup_keys`), subscriptions with several items and
  per-item periods, `proration_behavior` (`always_invoice`, `create_prorations`, `none`),
  `proration_date`, `payment_behavior="pending_if_incomplete"` (the update is applied
  only when its invoice is paid; otherwise `pending_update` is set), interval changes
  that reset the cycle, `invoices/create_preview`, `invoices/{id}/pay|void`,
  `invoice_payments`, `Idempotency-Key` replay (same key + same body = same answer),
  percent-off coupons (`/v1/coupons`) and subscription `discounts` (every invoice line
  discounted, rounded once; a credit for unused time gives back what its period was paid
  with, i.e. the discounts in force when it was paid, as Stripe's proration_details do; a
  preview's top-level `discounts` replace the subscription's, "" previews with none),
  `pause_collection` (invoices voided / left draft / uncollectible), subscription schedules
  (`/v1/subscription_schedules` from a subscription: phases of items and coupons that end on billing-period
  boundaries, entered at renewals and previewed by the upcoming invoice; release, cancel; see `schedules`).
- Proration as Stripe computes it, written independently of billing/proration.py so the
  two cross-check each other: by the second, unused time credited, remaining time charged.
- Objects are scoped to the secret key that created them (one key = one Stripe account),
  localstripe's own charges, payment intents, payment methods, refunds, products and setup
  intents included (owner recorded at creation, or derived from their customer); other
  localstripe resources are refused rather than served unscoped.
- Webhooks: `POST /_config/webhooks/{id}` (url, secret, optional events, and optional
  `api_key` to receive only that account's events), signed like Stripe
  (`Stripe-Signature: t=...,v1=HMAC-SHA256(secret, "t.payload")`), retried on failure, at most 8
  at a time; held (queued) under a name with `POST /_standin/webhooks/hold` or `--hold-webhooks NAME`
  until `POST /_standin/webhooks/release` (`make run` holds them while it seeds and starts the site).
- Test helpers under `/_standin/`: set a customer's card on file (`customers/{id}/card`),
  list and re-deliver events, advance a subscription to its next period.

Card numbers: 4242424242424242 pays; 4000000000000002 and 4000000000009995 are declined
when charged; 4000002500003155 requires authentication.

Not part of the shipped apps (DESIGN.md: a development tool): nothing under the apps imports it, and
`localstripe` is a dev-extra dependency. Modules, by sub-domain: `core` (state, errors, shapes),
`events` (webhooks), `invoices` (charging, invoice lines), `subscriptions` (item changes, proration),
`schedules` (subscription schedules' phases), `scoping` (middlewares, per-key scoping, the localstripe
fall-through), `api_*` (the HTTP handlers), `app` (routes and the command line).
"""
