"""Models of the upgrades app, defined in its sub-domain packages and imported here so Django finds them."""

from upgrades.console.models import (  # noqa: F401
    AccountNote,
    ConsoleTask,
    Objection,
    Playbook,
    Proposal,
    ProposalOption,
    SavedView,
)
from upgrades.experiments.models import Experiment, ExperimentAssignment  # noqa: F401
from upgrades.offers.models import (  # noqa: F401
    Feedback,
    Offer,
    OfferEvent,
    OfferSettings,
    Trial,
    TrialWin,
)
from upgrades.portal.models import PortalSession, PortalSettings  # noqa: F401
from upgrades.rules.models import (  # noqa: F401
    AccountLimit,
    AccountScore,
    DirtyAccount,
    ScoreWeights,
    Signal,
    TriggerRule,
)
