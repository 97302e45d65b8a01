"""The written definitions shown beside every figure (pages, CSV headers' notes, API descriptions).

One place, so a figure and its explanation never drift apart.
"""

from __future__ import annotations

MONTH = (
    "Months are calendar months in UTC. A month's MRR is each account's MRR at the end of the month: the "
    "mrr_after of its latest licence change effective on or before the month's last instant."
)
MRR = (
    "Monthly recurring revenue in minor units of the licence's own currency. Trials, free plans and grants are "
    "not MRR: a trialing licence counts 0, a zero-MRR licence is not a customer, and grants never appear."
)
CURRENCY_RULE = (
    "Every figure is reported per currency, in that currency's minor units. Amounts in different currencies are "
    "never added up or converted: each period has one row per currency (and per group)."
)
NEW = "MRR at the end of the month of accounts that paid for the first time that month (0 at the start)."
EXPANSION = "The rise in MRR of accounts paying at both the start and the end of the month."
CONTRACTION = "The fall in MRR (a positive amount) of accounts paying at both the start and the end of the month."
CHURN = "The start-of-month MRR (a positive amount) of accounts paying at the start and not at the end."
REACTIVATION = "MRR at the end of the month of accounts that had paid before, were not paying at its start and are now."
IDENTITY = "mrr_end - mrr_start = new + expansion + reactivation - contraction - churn, to the cent."
MRR_START = "MRR at the end of the previous month."
MRR_END = "MRR at the end of the month."
NRR = (
    "Net revenue retention for the month: (mrr_start + expansion - contraction - churn) / mrr_start, over the "
    "accounts paying at the start. New and reactivated revenue are left out. Empty when mrr_start is 0."
)
GRR = (
    "Gross revenue retention for the month: (mrr_start - contraction - churn) / mrr_start; never above 1. "
    "Empty when mrr_start is 0."
)
CUSTOMERS = "Accounts with MRR above 0 at the start and at the end of the month."
UPGRADE_RATE = (
    "Upgrade rate: accounts whose MRR rose within the month (customers_expanded) over the accounts paying at its "
    "start (customers_start)."
)
TRIAL_CONVERSION = (
    "Trial conversion: trials that ended in an upgrade over the trials that have finished (upgraded, ended or "
    "ended early); trials still in progress are left out."
)
FUNNEL = (
    "Offer funnel: offers built, then the offers that reached each step (sent, viewed, accepted, fulfilled) by "
    "their recorded events, whatever happened later. Declines are counted by the reason the customer chose."
)
TIME_TO_UPGRADE = (
    "Time to upgrade: days from a signal firing to the fulfilment of the offer built from it (median and 75th "
    "percentile over every fulfilled offer that came from a signal)."
)
FEEDBACK = (
    "Feedback by segment: declines (with the reasons chosen) and survey answers, per account segment and the "
    "packaging (tier, add-on or bundle) of the offer they answered; 'none' when the feedback answered no offer. "
    "Satisfaction, perceived value and friction are the mean of the 1-5 answers given (empty when none was)."
)
RULES_VS_LIVE = (
    "Rule backtests next to live results, over the last 30 days: for each live rule, the accounts its backtest "
    "says it would have fired for (replaying the rule on each day's usage) and how many of them upgraded within "
    "the backtest's window, beside the accounts it actually fired a signal for and how many of those had an offer "
    "built from the signal fulfilled."
)
ADOPTION = (
    "Adoption of newly unlocked features: for each tier change settled in the last 180 days, the features the new "
    "tier enables that the old one did not; their usage rollups (summed daily values of the features' meters) in "
    "the 30 days from the settlement day against the 30 days before it. Adopted: accounts with any usage after."
)
SEGMENT = "The account's segment (small business, mid-market, enterprise; 'none' when unset)."
TIER = "The tier of the account's licence at the start of the month (its new tier for new and reactivated accounts)."
COHORT = "Signup month: the month of the account's first paid licence (first change with MRR above 0)."

GROUPS = {"segment": SEGMENT, "tier": TIER, "cohort": COHORT, "currency": CURRENCY_RULE}

FIELDS = {
    "mrr_start": MRR_START,
    "mrr_end": MRR_END,
    "new": NEW,
    "expansion": EXPANSION,
    "contraction": CONTRACTION,
    "churn": CHURN,
    "reactivation": REACTIVATION,
    "nrr": NRR,
    "grr": GRR,
    "customers_start": CUSTOMERS,
    "customers_end": CUSTOMERS,
    "customers_expanded": UPGRADE_RATE,
}

ALL = {
    "month": MONTH,
    "mrr": MRR,
    "currency": CURRENCY_RULE,
    "identity": IDENTITY,
    "trial_conversion": TRIAL_CONVERSION,
    "funnel": FUNNEL,
    "feedback": FEEDBACK,
    "adoption": ADOPTION,
    "rules_vs_live": RULES_VS_LIVE,
    **FIELDS,
    **{f"group_{key}": text for key, text in GROUPS.items()},
}
