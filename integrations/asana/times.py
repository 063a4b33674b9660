"""Asana's moments (`created_at`, `modified_at`, `last_failure_at`, …) as datetimes."""

from datetime import UTC, datetime
from typing import Any


def parse_time(value: Any) -> datetime | None:
    """An aware datetime from an Asana timestamp, or None for a missing or malformed one.

    Asana sends ISO 8601 in UTC ("2012-02-22T02:06:58.147Z": the spec's `date-time`
    fields, developers.asana.com "Input/output options"); a value without an offset is read
    as UTC, so every result compares with `timezone.now()`.
    """
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
