"""messaging: sends what it is given; knows accounts and contacts only (imports `accounts` alone).

The orchestration (which offer or trial event sends which template) lives in `upgrades/` and calls
this API. Everything is tenant-first and keyword-only; times are aware UTC; pass `now=`/`at=` in tests.

Sending — `messaging.services`
    send_message(tenant, *, contact, template_key, cause, context, category, channel="email",
                 variant=None, now=None) -> Message
        Admits one message. `cause` names why ("offer:42", "trial:7:ending", "renewal:lic-9:60"):
        (contact, template_key, cause) is sent at most once, ever: one INSERT ... ON CONFLICT DO
        NOTHING on a unique key, and a repeat call (a retried task, a second worker) returns the
        first row unchanged. `category` is "upgrade" (capped, needs consent) or "transactional"
        (receipts, payment needed: outside the cap and quiet hours, still stopped by a hard bounce).
        `channel` is "email" or "in_app". `context` holds the purpose's variables
        (messaging.rendering.VARIABLES, e.g. offer, price, evidence, similar_customers, portal_url);
        contact, account, brand, unsubscribe_url and preferences_url are added here. The live
        version of the template renders now; with several live variants one is picked per contact,
        stably (or pass `variant=`). The decision is on the row: `state` is
          queued     email: a worker sends it after commit; in_app: due for `due_prompts`
          held       quiet hours in the contact's zone: `due_at` is the window's edge; beat sends it then
          sent       delivered (email), shown (prompt), recorded (CSM outreach)
          suppressed never sent; `suppressed_reason` says why (contact_cap, account_cap,
                     decline_quiet, unsubscribed, opted_out, no_consent, bounced, complained,
                     no_live_template)
          failed     rendering failed (`error` names the variable) or delivery gave up
          bounced    the provider reported a hard bounce for it
        Never raises for a policy reason; raises NotFound for another tenant's contact and
        InvalidInput for a bad category, channel or cause.

    record_outreach(tenant, *, contact, cause, actor, note="", at=None) -> Message
        A CSM's personal outreach takes a slot of the same cap. Call it BEFORE reaching out:
        state "sent" = go ahead (it is counted); "suppressed" + reason = don't.

    note_decline(tenant, *, account, at=None) -> DeclineQuiet
        Call when an account declines an offer: no upgrade email or prompt to it for the tenant's
        `decline_quiet_days`; held and queued ones are suppressed when they come due. Schedule the
        decline follow-up after the quiet period (send it with a due-time column and beat).

In-app prompts — `messaging.services`
    due_prompts(tenant, *, account, contact=None, placement=None, now=None) -> list[Message]
        What the product should show now (GET /api/v1/accounts/{external_id}/prompts). New prompts
        only while the cap has room, and a new prompt takes its cap slot as it is handed out, under
        the account's cap lock (two fetches at once cannot both take the last slot); prompts already
        handed out stay due until dismissed.
    due_prompts_by_external_id(tenant, *, external_id, contact_email=None, placement=None, now=None)
        -> (external_id, list[Message]): the same, with the account and contact looked up in the one
        read of the prompts (messaging.selectors.read_due_prompts); what the API calls. Missing or
        foreign account, or an email that is no contact of it: NotFound.
    record_prompt_event(tenant, *, prompt, event, now=None) -> (Message, MessageEvent)
        event is "shown" | "dismissed" | "clicked" (POST /api/v1/prompts/{id}/events). A prompt not
        yet holding a slot (never fetched) takes it on its first shown, click or dismissal.

The cap — one cap across email, in-app prompts shown and CSM outreach: `MessagingSettings.cap_count`
upgrade messages per contact and `account_cap_count` per account in `cap_window_days` (default 2 in 7).
Admissions for an account are serialised by a PostgreSQL advisory transaction lock, so concurrent
workers cannot exceed it.

Reads for the offer funnel — `messaging.selectors`
    message_funnel(tenant, *, cause_prefix="", since=None) -> {"sent", "suppressed", "opened",
        "clicked", "shown", "dismissed", "bounced", "complained", ...} (distinct messages)
    list_messages(tenant, *, account=None, contact=None, cause=None), list_message_events(tenant, *, message)

Contacts' choices — one-click unsubscribe (RFC 8058) and a preferences page reached from every email
without a sign-in (messaging.views); bounces and complaints arrive through django-anymail's verified
webhooks at /m/anymail/<provider>/tracking/ (messaging.receivers) and stop all mail to the address.

Demo — messaging.demo.seed_messaging_demo(tenant): idempotent, seeds settings and live templates.
"""
