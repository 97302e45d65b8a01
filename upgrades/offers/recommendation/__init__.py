"""The offer engine's recommendation: project the need, list the upgrades, choose the lowest that fits.

    recommend(tenant, *, account, license, signal=None, target_kind=None, target_key=None, segment=None,
              now=None, catalog=None) -> Recommendation

Parts: projection (the model, pure), catalog (one snapshot per batch, constant queries), holding (the
exact versions held: grandfathering), candidates, choose (pure), needs and evidence.
"""

from upgrades.offers.recommendation.catalog import CatalogSnapshot, load_catalog
from upgrades.offers.recommendation.choose import Segment, choose
from upgrades.offers.recommendation.engine import recommend
from upgrades.offers.recommendation.prefetch import Prefetched, prefetch_accounts
from upgrades.offers.recommendation.projection import Projection, project_meter
from upgrades.offers.recommendation.types import Candidate, Ent, Need, Recommendation, changes_between, is_upgrade

__all__ = [
    "Candidate",
    "CatalogSnapshot",
    "Ent",
    "Need",
    "Prefetched",
    "Projection",
    "Recommendation",
    "Segment",
    "changes_between",
    "choose",
    "is_upgrade",
    "load_catalog",
    "prefetch_accounts",
    "project_meter",
    "recommend",
]
