"""The one rule for creating things in Asana: never send a create twice without looking.

A create (`POST /tasks/{gid}/stories`, `POST /attachments`, `POST /workspaces/{gid}/tags`,
`POST /webhooks`) is not idempotent: sent twice, it makes two comments, two tags, two
webhooks. When its answer is a 5xx or never comes, Asana (or a gateway in front of it) may
have applied it, so the client raises `AsanaOutcomeUnknown` instead of resending, and every
caller creates through `create_once` with a way to find what the create would have made.
"""

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings

from integrations.asana.errors import AsanaOutcomeUnknown

log = logging.getLogger(__name__)

T = TypeVar("T")
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0


def create_once(
    send: Callable[[], T],
    find_existing: Callable[[], T | None],
    *,
    what: str = "create",
    retries: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Send a create; after an unknown outcome, return what landed or send it again.

    `send` makes the request (through `AsanaClient`) and returns its result; `find_existing`
    reads Asana and returns the object the create would have made, or None when it did not
    land. Up to `retries` (default `ASANA_MAX_RETRIES`) resends, each only after a look that
    found nothing, with capped exponential backoff and jitter. Raises the last
    `AsanaOutcomeUnknown` when the retries are spent (the caller may try again later: it is
    not permanent), and any other `AsanaError` from `send` or `find_existing` as it comes.
    """
    retries = settings.ASANA_MAX_RETRIES if retries is None else retries
    attempt = 0
    while True:
        try:
            return send()
        except AsanaOutcomeUnknown as exc:
            found = find_existing()
            if found is not None:
                log.info("%s: answered %s but had landed; not sent again", what, exc.status)
                return found
            attempt += 1
            if attempt > retries:
                raise
            ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))
            wait = ceiling / 2 + random.uniform(0, ceiling / 2)
            log.info("%s: did not land (%s), sending again in %.2f s", what, exc.status, wait)
            sleep(wait)
