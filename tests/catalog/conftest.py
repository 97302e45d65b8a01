import pytest

from tests.catalog.factories import Ladder, add_extras, build_ladder


@pytest.fixture
def ladder(world_a) -> Ladder:
    return build_ladder(world_a)


@pytest.fixture
def ladder_b(world_b) -> Ladder:
    return build_ladder(world_b, prefix="Bee ")


@pytest.fixture
def full_a(ladder) -> Ladder:
    return add_extras(ladder)


@pytest.fixture
def full_b(ladder_b) -> Ladder:
    return add_extras(ladder_b, prefix="Bee ")
