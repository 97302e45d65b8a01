"""pytest plugin for `make mutation`: each mutated module is judged by its own tests only.

mutmut runs, for each mutant, every selected test that called the mutated function. The
proration tests call `catalog.pricing.round_half_up`, so without this plugin they would
kill pricing mutants and flatter pricing's score. While a mutant is under test
(mutmut names it in MUTANT_UNDER_TEST as `<module>.x_<function>__mutmut_<n>`), tests
outside its module's own files are deselected. Loaded only by `[tool.mutmut]
pytest_add_cli_args`; ordinary test runs never see it.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# Property tests run once per mutant: fewer examples, the same ones every run (so the same tests
# give the same score), no example database in mutants/, no deadline on shared cores.
settings.register_profile("mutation", max_examples=40, derandomize=True, database=None, deadline=None)
settings.load_profile("mutation")

# module -> its own tests (node id prefixes, relative to the project root)
OWN_TESTS = {
    "catalog.pricing": ("tests/catalog/test_pricing.py",),
    "billing.proration": ("tests/billing/test_proration.py",),
    "usage.services.ingest": ("tests/usage/test_ingest_validation.py", "tests/usage/test_rollup_offsets.py"),
}


def mutated_module(mutant: str) -> str | None:
    """`catalog.pricing.x_round_half_up__mutmut_3` -> `catalog.pricing`; None outside a mutant run."""
    parts = mutant.split(".")
    for i, part in enumerate(parts):
        if part.startswith(("x_", "xǁ")) and "__mutmut_" in mutant:
            return ".".join(parts[:i])
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    module = mutated_module(os.environ.get("MUTANT_UNDER_TEST", ""))
    if module is None or module not in OWN_TESTS:
        return
    own = OWN_TESTS[module]
    keep = [item for item in items if item.nodeid.removeprefix("mutants/").startswith(own)]
    dropped = [item for item in items if item not in keep]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
