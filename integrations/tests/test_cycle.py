"""One connection's turn of the poll-then-claim loop both runners share."""

from collections import deque

from integrations.models import ProcessedTask
from integrations.pipeline.cycle import poll_then_claim
from integrations.tests.pipeline_fixtures import interval_passes, tagged

Runner = ProcessedTask.Runner


def turn(connection, pending, room, handed):
    return poll_then_claim(
        connection,
        runner=Runner.POLLERS,
        pending=pending,
        names={},
        has_room=lambda: len(handed) < room,
        hand_over=handed.append,
    )


def test_a_turn_claims_oldest_first_while_there_is_room_and_keeps_the_rest(connection, pilot):
    first, second = tagged(pilot, "first"), tagged(pilot, "second")
    pending: deque[str] = deque()
    handed: list[ProcessedTask] = []

    done = turn(connection, pending, 1, handed)

    assert done.polled is not None and done.claimed == 1
    assert [p.task_gid for p in handed] == [first] and list(pending) == [second]
    assert handed[0].runner == Runner.POLLERS and handed[0].task_name == "first"


def test_a_turn_with_candidates_left_claims_them_without_polling_again(connection, pilot):
    for name in ("first", "second"):
        tagged(pilot, name)
    pending: deque[str] = deque()
    handed: list[ProcessedTask] = []
    turn(connection, pending, 1, handed)
    interval_passes(connection)
    requests = len(pilot.requests)

    done = turn(connection, pending, 2, handed)

    assert done.polled is None and done.claimed == 1 and not pending
    assert len(pilot.requests) == requests


def test_a_turn_that_is_not_due_does_nothing(connection, pilot):
    tagged(pilot, "first")
    handed: list[ProcessedTask] = []
    turn(connection, deque(), 0, handed)

    done = turn(connection, deque(), 1, handed)

    assert done.polled is None and done.claimed == 0 and not done.worked
