"""The resumable order of run events: every cursor a stream sends resumes exactly after its event."""

from __future__ import annotations

import random
import uuid
from dataclasses import replace

import pytest

from deployments.event_order import Cursor, EventKind, Feed, OrderingBuffer, Position, RunEvent

FLOW_RUN = uuid.uuid4()
HOLD = {Feed.STATE: 0.5, Feed.LOG: 3.0}
SECOND = 1_000_000


def event(kind: EventKind, at: int, rng: random.Random) -> RunEvent:
    return RunEvent(
        kind=kind, position=Position(at=at, id=str(uuid.UUID(int=rng.getrandbits(128)))), flow_run_id=FLOW_RUN
    )


def run_story(rng: random.Random) -> list[RunEvent]:
    """State changes and log lines over 20 seconds, many close together (as a fan-out makes them)."""
    start = 1_700_000_000 * SECOND
    kinds = [EventKind.FLOW_RUN_STATE, EventKind.TASK_RUN_STATE, EventKind.LOG, EventKind.LOG]
    return [event(rng.choice(kinds), start + rng.randrange(20 * SECOND), rng) for _ in range(120)]


def live(events: list[RunEvent], rng: random.Random, after: Cursor | None = None) -> list[RunEvent]:
    """What one stream sends: events arrive within their window, releases happen now and then."""
    buffer = OrderingBuffer(hold=HOLD, cursor=after or Cursor())
    # Each event reaches us some time after it happened, but within its feed's ordering window.
    arrivals = sorted(
        (e.position.at + rng.randrange(int(HOLD[e.feed] * SECOND)), i) for i, e in enumerate(events)
    )
    sent: list[RunEvent] = []
    for arrived, index in arrivals:
        sent += buffer.release(arrived)
        buffer.offer(events[index])
    sent += buffer.release(None)
    return sent


@pytest.mark.parametrize("seed", range(20))
def test_every_cursor_resumes_with_exactly_the_events_after_it(seed: int) -> None:
    rng = random.Random(seed)
    events = run_story(rng)
    sent = live(events, rng)
    assert sorted(e.position for e in sent) == sorted(e.position for e in events)
    ids = [e.cursor for e in sent]
    assert len(set(ids)) == len(ids), "two events share an id"
    for feed in Feed:
        positions = [e.position for e in sent if e.feed is feed]
        assert positions == sorted(positions)
    for index, last in enumerate(sent):
        # A client that got sent[: index + 1] resumes with the id of its last event.
        # The two feeds interleave as their events happen to arrive; each feed resumes exactly.
        resumed = live(events, rng, after=Cursor.parse(last.cursor))
        for feed in Feed:
            want = [e.position for e in sent[index + 1 :] if e.feed is feed]
            assert [e.position for e in resumed if e.feed is feed] == want, (index, feed)


def test_events_released_together_carry_cursors_in_the_order_they_are_sent() -> None:
    # A log line between two state changes, all three due at once: the line's id must not claim
    # the later state change, and the later state change's id must include the line.
    rng = random.Random(0)
    first, line, second = (
        event(EventKind.TASK_RUN_STATE, 10 * SECOND, rng),
        event(EventKind.LOG, 11 * SECOND, rng),
        event(EventKind.TASK_RUN_STATE, 12 * SECOND, rng),
    )
    buffer = OrderingBuffer(hold=HOLD)
    for item in (second, line, first):
        buffer.offer(item)
    sent = buffer.release(None)
    assert [e.position for e in sent] == [first.position, line.position, second.position]
    cursors = [Cursor.parse(e.cursor) for e in sent]
    assert cursors[1] == Cursor(state=first.position, log=line.position)
    assert cursors[2] == Cursor(state=second.position, log=line.position)


def test_a_runs_final_state_waits_for_task_states_still_on_their_way() -> None:
    # The server records the run's end at once; the process's last task state reaches us later.
    rng = random.Random(1)
    task_done = event(EventKind.TASK_RUN_STATE, 10 * SECOND, rng)
    final = replace(event(EventKind.FLOW_RUN_STATE, 10 * SECOND + 20_000, rng), state="FAILED")
    buffer = OrderingBuffer(hold=HOLD)
    buffer.offer(final)
    assert buffer.release(15 * SECOND) == []
    assert buffer.next_due() is None
    buffer.offer(task_done)
    sent = buffer.release(16 * SECOND) + buffer.release(None)
    assert [e.position for e in sent] == [task_done.position, final.position]


def test_a_workflow_streams_final_state_waits_for_a_while_only() -> None:
    rng = random.Random(2)
    final = replace(event(EventKind.FLOW_RUN_STATE, 10 * SECOND, rng), state="COMPLETED")
    later = event(EventKind.FLOW_RUN_STATE, 11 * SECOND, rng)  # another run's state change
    buffer = OrderingBuffer(hold=HOLD, final_hold=4.0)
    buffer.offer(final)
    buffer.offer(later)
    assert buffer.release(12 * SECOND) == []  # the later change waits behind the final state
    assert buffer.next_due() == 14 * SECOND
    assert [e.position for e in buffer.release(14 * SECOND)] == [final.position, later.position]
