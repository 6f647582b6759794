"""The claim schedule (pure): when a read runs the claim script, and how long it may block meanwhile."""

from __future__ import annotations

import math

from friday_bus.core.consuming import ClaimSchedule

K = ("s", "g")
OTHER = ("s", "h")


def test_a_group_never_claimed_is_due():
    sch = ClaimSchedule(0.5)
    assert sch.due(K, 0.0) and sch.due(K, 1e9)
    assert sch.next_wait(K, 100.0) == 0.5  # nothing scheduled: block at most one interval


def test_claimed_waits_one_interval():
    sch = ClaimSchedule(0.5)
    sch.claimed(K, 100.0)
    assert not sch.due(K, 100.0) and not sch.due(K, 100.49)
    assert sch.due(K, 100.5)
    assert sch.due(OTHER, 100.0)  # per (stream, group)


def test_a_full_claim_makes_the_next_read_claim_again():
    sch = ClaimSchedule(0.5)
    sch.claimed(K, 100.0)
    sch.more_waiting(K)
    assert sch.due(K, 100.0)


def test_a_retry_due_before_the_interval_brings_the_claim_forward():
    sch = ClaimSchedule(5.0)
    sch.claimed(K, 100.0)
    sch.retry_at(K, 101.0)
    assert not sch.due(K, 100.9) and sch.due(K, 101.0)
    assert math.isclose(sch.next_wait(K, 100.25), 0.75)  # block only until the retry is due
    assert sch.next_wait(K, 102.0) == 0.0  # overdue: do not block at all


def test_the_earliest_retry_wins_and_a_claim_clears_it():
    sch = ClaimSchedule(5.0)
    sch.claimed(K, 100.0)
    sch.retry_at(K, 103.0)
    sch.retry_at(K, 102.0)
    sch.retry_at(K, 104.0)
    assert sch.next_wait(K, 100.0) == 2.0
    sch.claimed(K, 102.0)
    assert not sch.due(K, 103.5) and sch.next_wait(K, 103.0) == 5.0  # back to the interval
    assert sch.due(OTHER, 100.0) and sch.next_wait(OTHER, 100.0) == 5.0


def test_nogroup_recovery_never_runs_twice_within_the_pause():
    sch = ClaimSchedule(0.5, nogroup_pause_s=1.0)
    assert sch.nogroup_backoff(K, 100.0) == 0.0  # the first recovery runs at once
    assert math.isclose(sch.nogroup_backoff(K, 100.25), 0.75)  # the next one waits for the rest of the pause
    # ... and is counted at 101.0, when it runs: a third one right after waits a full pause again
    assert math.isclose(sch.nogroup_backoff(K, 101.0), 1.0)
    assert sch.nogroup_backoff(K, 105.0) == 0.0
    assert sch.nogroup_backoff(OTHER, 105.0) == 0.0  # per (stream, group)
