"""How a connection watches for newly tagged tasks: which kind of poll runs now, and how often.

Three watch methods (`AsanaConnection.WatchMethod`):

- *automatic* (the default): search where the workspace's plan has it, else the tag list.
  Search is `GET /workspaces/{workspace_gid}/tasks/search` for open tasks carrying a pilot
  tag and no status tag, so an idle poll costs one request however long the history. Asana
  answers 402 on plans without search (spec, searchTasksForWorkspace, "Premium access"): the
  poll then lists the tag instead, the card says so, and search is tried again after
  `SEARCH_RETRY` (the plan may be upgraded). Search is eventually consistent ("between 10 and
  60 seconds", longer in incidents), so a full pass over the tag list still runs every
  `PILOT_RECONCILE_SECONDS`: nothing tagged is ever missed, only found later.
- *tag list* (any plan): every poll lists every task that carries a pilot tag
  (`GET /tags/{tag_gid}/tasks`), completed ones included: one request per 100 tasks of
  history, and no indexing delay.
- *webhooks first*: while one of the connection's webhooks is healthy (active, and Asana
  reached it within `PILOT_WEBHOOK_QUIET_SECONDS`: a delivery or a heartbeat), routine polling
  slows to the reconciling interval; when the webhook goes quiet, fails or is deleted the
  normal interval applies again by itself. Each poll is a full tag-list pass.
"""

from datetime import datetime, timedelta
from typing import Literal

from django.conf import settings
from django.utils import timezone

from integrations.models import AsanaConnection, WebhookRegistration

Method = AsanaConnection.WatchMethod
Pass = Literal["search", "tag_list"]
# How long a 402 on search keeps a connection on the tag list before search is tried again.
SEARCH_RETRY = timedelta(days=1)


def reconcile_interval() -> timedelta:
    return timedelta(seconds=settings.PILOT_RECONCILE_SECONDS)


def webhook_quiet() -> timedelta:
    return timedelta(seconds=settings.PILOT_WEBHOOK_QUIET_SECONDS)


def healthy_webhook(
    connection: AsanaConnection, now: datetime | None = None
) -> WebhookRegistration | None:
    """The connection's most recently heard-from active webhook, if Asana reached it (a
    delivery or a heartbeat) within `PILOT_WEBHOOK_QUIET_SECONDS`; else None."""
    now = now or timezone.now()
    return (
        WebhookRegistration.objects.filter(
            connection=connection,
            state=WebhookRegistration.State.ACTIVE,
            last_contact_at__gte=now - webhook_quiet(),
        )
        .order_by("-last_contact_at")
        .first()
    )


def poll_interval_now(connection: AsanaConnection, now: datetime | None = None) -> int:
    """Seconds between polls for the connection at this moment: its `poll_interval`, or the
    reconciling interval (if longer) while a *webhooks first* connection has a healthy webhook."""
    if connection.watch_method == Method.WEBHOOKS_FIRST and healthy_webhook(connection, now):
        return max(connection.poll_interval, settings.PILOT_RECONCILE_SECONDS)
    return connection.poll_interval


def search_unavailable(connection: AsanaConnection, now: datetime | None = None) -> bool:
    """Asana answered 402 to this connection's search less than `SEARCH_RETRY` ago."""
    now = now or timezone.now()
    since = connection.search_unavailable_at
    return since is not None and now - since < SEARCH_RETRY


def pass_for(connection: AsanaConnection, now: datetime | None = None) -> Pass:
    """Which list the poll about to run reads: "search", or "tag_list" (a full pass)."""
    now = now or timezone.now()
    if connection.watch_method != Method.AUTO or search_unavailable(connection, now):
        return "tag_list"
    last = connection.last_reconcile_at
    if last is None or now - last >= reconcile_interval():
        return "tag_list"
    return "search"


def note_search_unavailable(connection: AsanaConnection, now: datetime | None = None) -> None:
    """Record Asana's 402 on search (the workspace's plan has none)."""
    now = now or timezone.now()
    AsanaConnection.objects.filter(pk=connection.pk).update(search_unavailable_at=now)
    connection.search_unavailable_at = now


def note_search_answered(connection: AsanaConnection, now: datetime | None = None) -> None:
    """Record that Asana answered a search: search is detected on this workspace. Written only
    when that is news (never detected, or a 402 since), so a routine search poll writes
    nothing."""
    if connection.search_detected_at is not None and connection.search_unavailable_at is None:
        return
    now = now or timezone.now()
    AsanaConnection.objects.filter(pk=connection.pk).update(
        search_detected_at=now, search_unavailable_at=None
    )
    connection.search_detected_at, connection.search_unavailable_at = now, None


def note_full_pass(connection: AsanaConnection, started: datetime) -> None:
    """A full tag-list pass succeeded: the reconciling interval starts again from `started`."""
    AsanaConnection.objects.filter(pk=connection.pk).update(last_reconcile_at=started)
    connection.last_reconcile_at = started


def describe(connection: AsanaConnection, now: datetime | None = None) -> str:
    """One sentence for the card and `asana status`: the method and what it does right now."""
    now = now or timezone.now()
    minutes = f"{settings.PILOT_RECONCILE_SECONDS / 60:g} min"
    if connection.watch_method == Method.AUTO:
        return _describe_auto(connection, now, minutes)
    if connection.watch_method == Method.WEBHOOKS_FIRST:
        hook = healthy_webhook(connection, now)
        if hook is not None:
            heard = f"{hook.last_contact_at:%Y-%m-%d %H:%M:%S %Z}"
            return (
                f"webhooks first: a webhook is healthy (last heard {heard}), so polling runs "
                f"every {minutes} as a reconciling pass"
            )
        return (
            "webhooks first: no healthy webhook, so polling runs at its normal interval "
            f"(every {connection.poll_interval} s)"
        )
    return "tag list: every task ever tagged is listed on each poll"


def _describe_auto(connection: AsanaConnection, now: datetime, minutes: str) -> str:
    refused = connection.search_unavailable_at
    if refused is not None:
        retry = (
            f"again at {refused + SEARCH_RETRY:%Y-%m-%d %H:%M %Z}"
            if search_unavailable(connection, now)
            else "again at the next poll"
        )
        return (
            "tag list — search needs a paid plan (Asana answered 402 Payment Required on "
            f"{refused:%Y-%m-%d %H:%M %Z}); search is tried {retry}"
        )
    if connection.search_detected_at is not None:
        return (
            f"search (detected {connection.search_detected_at:%Y-%m-%d %H:%M %Z}): one request "
            f"per idle poll; a full pass over the tag list every {minutes}"
        )
    return (
        "automatic: search is tried after the first full pass over the tag list, and used "
        "where the workspace's plan has it"
    )
