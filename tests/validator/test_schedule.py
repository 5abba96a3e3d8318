"""The validator's schedule as a pure function of a fake clock, a hundred 4-hour epochs in milliseconds: every
epoch validated once, never before its grace has passed and at once after it; after a downtime the epochs past
the lag are skipped as "too old" (as "before this validator first ran" when they ended before that) and one
already begun is finished; the miner's upload time likewise."""

from __future__ import annotations

from datetime import timedelta

from resi.api.models import Assignment
from resi.epochs import epoch_at, epoch_from_id
from resi.miner.loop import too_late
from resi.validator.schedule import BEFORE_FIRST_RUN, TOO_OLD, plan
from tests.kit import FakeClock

HOURS4 = timedelta(hours=4)
GRACE = 600.0


class Validator:
    """What the loop keeps between steps, run on a fake clock: each validation takes ``work`` seconds."""

    def __init__(self, clock: FakeClock, work: float = 300.0, lag: float | None = None):
        self.clock, self.work, self.lag = clock, work, lag
        self.first_run = clock()
        self.finished: dict[str, tuple[float, float]] = {}
        """epoch id -> (began, finished) of its validation."""
        self.skipped: dict[str, tuple[str, float]] = {}
        """epoch id -> (why, when)."""

    def done(self, epoch_id: str) -> bool:
        """As the state says it: validated or skipped."""
        return epoch_id in self.finished or epoch_id in self.skipped

    def step(self) -> float:
        now = self.clock.now()
        current = epoch_at(now, HOURS4)
        p = plan(
            now,
            current.start,
            current.end,
            GRACE,
            self.lag,
            self.first_run,
            self.done,
            lambda e: e in self.finished or e in self.skipped,
        )
        for epoch_id, why in p.skip:
            assert epoch_id not in self.skipped and epoch_id not in self.finished  # once
            self.skipped[epoch_id] = (why, self.clock())
        if p.validate is None:
            return p.wait
        assert p.validate not in self.finished
        began = self.clock()
        self.clock.advance(self.work)
        self.finished[p.validate] = (began, self.clock())
        return 0.0

    def run_for(self, seconds: float) -> None:
        until = self.clock() + seconds
        while self.clock() < until:
            wait = self.step()
            assert wait >= 0
            self.clock.advance(max(wait, 1.0))

    def check(self) -> None:
        """No epoch both validated and skipped; each validation began once its grace had passed, and at once
        (within a second of the previous one's end); a skip only past the lag, named "before this validator
        first ran" exactly when it ended before that."""
        lag = self.lag or HOURS4.total_seconds()
        ends = {e: epoch_from_id(e, HOURS4).end.timestamp() for e in [*self.finished, *self.skipped]}
        assert not set(self.finished) & set(self.skipped)
        for epoch_id, (began, _) in self.finished.items():
            due = max(ends[epoch_id] + GRACE, self.first_run)
            assert due <= began <= max(due, min(b for b, _ in self.finished.values() if b >= due)) + 1.0 + self.work
        for epoch_id, (why, when) in self.skipped.items():
            assert when - ends[epoch_id] > lag
            assert (why == BEFORE_FIRST_RUN) == (ends[epoch_id] <= self.first_run) and why in (BEFORE_FIRST_RUN, TOO_OLD)


def _start(offset: float) -> FakeClock:
    return FakeClock(epoch_at(FakeClock(1_750_000_000).now(), HOURS4).start.timestamp() + offset)


def test_a_hundred_epochs_each_validated_once_after_its_grace():
    v = Validator(_start(60))
    v.run_for(100 * HOURS4.total_seconds())
    v.check()
    ends = sorted(epoch_from_id(e, HOURS4).end.timestamp() for e in v.finished)
    assert len(ends) == 100 and ends == [ends[0] + i * HOURS4.total_seconds() for i in range(100)]  # no gap
    assert ends[0] < v.first_run  # the epoch that had just ended when it started, and the 99 after it
    assert [why for why, _ in v.skipped.values()] == [BEFORE_FIRST_RUN]  # the one before: past the lag already
    for epoch_id, (began, _) in v.finished.items():  # each at once, once due
        assert began <= epoch_from_id(epoch_id, HOURS4).end.timestamp() + GRACE + v.work + 1.0


def test_after_a_downtime_old_epochs_are_skipped_as_too_old():
    v = Validator(_start(60))
    v.run_for(3 * HOURS4.total_seconds())
    validated = set(v.finished)
    v.clock.advance(5 * HOURS4.total_seconds())  # down for five epochs: those more than a lag and an epoch old
    v.run_for(2 * HOURS4.total_seconds())  # are not looked at again
    v.check()
    too_old = [e for e, (why, _) in v.skipped.items() if why == TOO_OLD]
    assert len(too_old) == 1 and validated < set(v.finished)


def test_an_epoch_begun_before_the_lag_ran_out_is_finished_not_skipped():
    clock = _start(60)
    first_run = clock()
    ended = epoch_at(clock.now(), HOURS4)
    clock.t = ended.end.timestamp() + HOURS4.total_seconds() + 100  # past the lag, within the lookback
    args = (clock.now(), *_bounds(clock), GRACE, None, first_run, lambda e: False)
    assert plan(*args, lambda e: e == ended.id).validate == ended.id  # its state holds it: begun
    assert (ended.id, TOO_OLD) in plan(*args, lambda e: False).skip  # never begun: too old


def _bounds(clock: FakeClock):
    epoch = epoch_at(clock.now(), HOURS4)
    return epoch.start, epoch.end


def test_a_long_lag_reaches_back_before_the_first_run_and_validates_what_it_allows():
    v = Validator(_start(3 * 3600), lag=8 * 3600.0)
    v.run_for(2 * HOURS4.total_seconds())
    v.check()
    assert sum(1 for e in v.finished if epoch_from_id(e, HOURS4).end.timestamp() <= v.first_run) == 2


def test_the_miners_upload_time():
    clock = FakeClock(1_750_000_000)
    epoch = epoch_at(clock.now(), HOURS4)
    assignment = Assignment.model_validate(
        {
            "epochId": epoch.id,
            "nonce": "n",
            "zipcodes": [],
            "targetListings": 1,
            "tolerancePercent": 10,
            "epochStart": epoch.start.isoformat(),
            "epochEnd": epoch.end.isoformat(),
            "submissionDeadline": epoch.end.isoformat(),
        }
    )
    margin = 900.0
    clock.t = epoch.end.timestamp() - margin - 1
    assert too_late(assignment, clock.now(), margin) is None
    clock.advance(2)
    assert "upload time" in too_late(assignment, clock.now(), margin)
