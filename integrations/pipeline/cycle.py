"""One connection's turn of the poll-then-claim loop, shared by both runners: the django-q2
schedule (`jobs.poll_all`, which hands each claim to the queue) and `runpollers` (which hands
each claim to its own worker threads and keeps the candidates it had no room for).

The poll slot (`poll.poll_if_due`) keeps each connection to one poll per interval across
every process, and the claim (`claims.claim`) keeps every task to one execution. The safety
rails (`breaker`) are looked at here too: a connection paused for Asana's errors is not
polled (its probe stands in), and a paused connection claims nothing.
"""

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from integrations.models import AsanaConnection, ProcessedTask
from integrations.pipeline import breaker, claims, needs_input
from integrations.pipeline.poll import PollResult, poll_if_due

log = logging.getLogger(__name__)


@dataclass
class Turn:
    """What one turn did: the poll's result (None when the connection was not polled: not
    due, or candidates from its last poll were still pending) and how many tasks it claimed."""

    polled: PollResult | None
    claimed: int = 0

    @property
    def worked(self) -> bool:
        return self.polled is not None or self.claimed > 0


def poll_then_claim(
    connection: AsanaConnection,
    *,
    runner: ProcessedTask.Runner,
    pending: deque[str],
    names: dict[str, str],
    has_room: Callable[[], bool],
    hand_over: Callable[[ProcessedTask], None],
) -> Turn:
    """Poll `connection` when it is due and nothing is `pending` from its last poll, adding
    the candidates (oldest first) to `pending` and their names to `names`; then claim pending
    candidates for `runner` while `has_room()`, handing each claim to `hand_over`.

    A reply the poll found to a task waiting for input claims that task back first
    (`needs_input.resume`), while there is room; a reply left waits for the next poll.
    A candidate someone else claimed meanwhile is dropped. Candidates left in `pending` are
    the caller's: `runpollers` keeps them for its next turn, the queue's job drops them (the
    next poll finds them again). While the connection is paused the candidates are dropped
    and nothing is claimed; paused for Asana's errors, it is not polled but probed once per
    cool-down (`breaker.probe_if_due`). Raises what the poll raises (AsanaError, database
    errors).
    """
    turn = Turn(polled=None)
    if connection.paused_at is not None and connection.pause_kind == breaker.Kind.ERRORS:
        pending.clear()
        breaker.probe_if_due(connection)
        return turn
    if not pending:
        turn.polled = poll_if_due(connection)
        if turn.polled is not None:
            breaker.check_errors(connection)
            pending.extend(turn.polled.candidates)
            names.update(turn.polled.names)
    replies = turn.polled.waiting.replies if turn.polled is not None else []
    try:
        for waiting, reply in replies:
            if not has_room():
                break
            resumed = needs_input.resume(waiting, reply, runner=runner)
            if resumed is not None:
                hand_over(resumed)
                turn.claimed += 1
        while pending and has_room():
            gid = pending.popleft()
            processed = claims.claim(
                connection, gid, source="poll", task_name=names.get(gid, ""), runner=runner
            )
            if processed is not None:
                hand_over(processed)
                turn.claimed += 1
    except breaker.Paused as exc:
        log.warning("connection %s: %s; nothing more is claimed", connection.workspace_gid, exc)
        pending.clear()
    return turn
