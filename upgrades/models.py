"""Models of the upgrades app, defined in its sub-domain packages and imported here so Django finds them."""

from upgrades.rules.models import (  # noqa: F401
    AccountLimit,
    AccountScore,
    DirtyAccount,
    ScoreWeights,
    Signal,
    TriggerRule,
)
