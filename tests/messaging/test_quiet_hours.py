"""Quiet hours are wall-clock hours in the contact's zone: across zones, midnight and DST changes."""

from __future__ import annotations

import datetime

import pytest

from messaging.services.policy import quiet_hours_release

UTC = datetime.UTC
EVENING, MORNING = datetime.time(20, 0), datetime.time(8, 0)


def at(*args: int) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "zone", "release"),
    [
        (at(2026, 11, 2, 12, 0), "Europe/London", None),  # midday
        (at(2026, 11, 2, 21, 0), "Europe/London", at(2026, 11, 3, 8, 0)),  # evening: tomorrow 08:00
        (at(2026, 11, 3, 7, 59), "Europe/London", at(2026, 11, 3, 8, 0)),  # early morning: today 08:00
        (at(2026, 11, 3, 8, 0), "Europe/London", None),  # the edge itself is awake
        (at(2026, 11, 2, 12, 0), "Asia/Tokyo", at(2026, 11, 2, 23, 0)),  # 21:00 in Tokyo -> 08:00 JST
    ],
)
def test_release_is_the_next_local_morning(now, zone, release):
    assert quiet_hours_release(now, time_zone=zone, start=EVENING, end=MORNING) == release


def test_the_same_instant_is_quiet_in_one_zone_and_not_another():
    now = at(2026, 11, 2, 12, 0)  # 04:00 in Los Angeles, 13:00 in Berlin
    assert quiet_hours_release(now, time_zone="America/Los_Angeles", start=EVENING, end=MORNING) == at(
        2026, 11, 2, 16, 0
    )
    assert quiet_hours_release(now, time_zone="Europe/Berlin", start=EVENING, end=MORNING) is None


def test_a_night_across_the_autumn_change_ends_at_local_eight_not_utc_plus_twelve():
    # New York falls back at 02:00 on 1 Nov 2026 (EDT -4 -> EST -5): the night is 13 hours long.
    now = at(2026, 11, 1, 1, 0)  # 21:00 EDT on 31 Oct
    assert quiet_hours_release(now, time_zone="America/New_York", start=EVENING, end=MORNING) == at(
        2026, 11, 1, 13, 0
    )  # 08:00 EST


def test_a_night_across_the_spring_change_is_an_hour_shorter():
    # London springs forward at 01:00 UTC on 29 Mar 2026 (GMT -> BST).
    now = at(2026, 3, 28, 21, 0)  # 21:00 GMT
    assert quiet_hours_release(now, time_zone="Europe/London", start=EVENING, end=MORNING) == at(2026, 3, 29, 7, 0)


def test_an_end_inside_the_spring_gap_resolves_to_the_first_instant_after_it():
    # New York skips 02:00-03:00 on 8 Mar 2026; a window ending at 02:30 ends when the clock reads 03:00 EDT.
    now = at(2026, 3, 8, 5, 0)  # 00:00 EST
    release = quiet_hours_release(now, time_zone="America/New_York", start=EVENING, end=datetime.time(2, 30))
    assert release == at(2026, 3, 8, 7, 0)


def test_a_daytime_window_that_does_not_wrap_midnight():
    start, end = datetime.time(12, 0), datetime.time(14, 0)
    assert quiet_hours_release(at(2026, 11, 2, 13, 0), time_zone="UTC", start=start, end=end) == at(2026, 11, 2, 14)
    assert quiet_hours_release(at(2026, 11, 2, 15, 0), time_zone="UTC", start=start, end=end) is None


def test_equal_start_and_end_means_no_quiet_hours():
    assert quiet_hours_release(at(2026, 11, 2, 3, 0), time_zone="UTC", start=MORNING, end=MORNING) is None
