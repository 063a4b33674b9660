"""Turning an Asana task into the executor's task: id, title, description, labels,
project, URL, creation time and priority (from tags)."""

from html.parser import HTMLParser
from typing import Any

STATUS_TAGS = ("pilot-in-progress", "pilot-done", "pilot-failed")
# Everything conversion and the eligibility check need, in one request.
DETAIL_FIELDS = (
    "name",
    "notes",
    "html_notes",
    "completed",
    "created_at",
    "permalink_url",
    "tags.name",
    "projects.name",
)
# Highest first: a task tagged both `low` and `urgent` is urgent.
PRIORITY_TAGS = (
    ("urgent", "urgent"),
    ("critical", "urgent"),
    ("high", "high"),
    ("medium", "medium"),
    ("low", "low"),
)
_BLOCK_TAGS = {"p", "li", "ul", "ol", "blockquote", "pre", "h1", "h2", "h3", "hr", "br"}


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def strip_html(html: str) -> str:
    parser = _TextExtractor()
    parser.feed(html or "")
    parser.close()
    lines = [line.rstrip() for line in "".join(parser.parts).splitlines()]
    text = "\n".join(lines).strip()
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text


def tag_names(task: dict[str, Any]) -> list[str]:
    return [str(t.get("name") or "") for t in task.get("tags") or [] if t.get("name")]


def priority(names: list[str]) -> str | None:
    lowered = {n.strip().lower() for n in names}
    for tag, level in PRIORITY_TAGS:
        if tag in lowered:
            return level
    return None


def convert(task: dict[str, Any]) -> dict[str, Any]:
    """The executor's view of a task fetched with DETAIL_FIELDS."""
    gid = str(task["gid"])
    names = tag_names(task)
    projects = task.get("projects") or []
    notes = (task.get("notes") or "").strip()
    return {
        "id": f"ASANA-{gid}",
        "gid": gid,
        "title": task.get("name") or "",
        "description": notes or strip_html(task.get("html_notes") or ""),
        # Status tags are pilotsite's bookkeeping, not something the task is about.
        "labels": [n for n in names if n not in STATUS_TAGS],
        "project": (projects[0].get("name") or "") if projects else "",
        "url": task.get("permalink_url") or "",
        "created_at": task.get("created_at") or "",
        "priority": priority(names),
    }


def ineligible_reason(task: dict[str, Any], pilot_tag: str) -> str | None:
    """Why a task may not be dispatched now, or None when it may (tag names are case-sensitive)."""
    names = tag_names(task)
    if task.get("completed"):
        return "completed"
    if pilot_tag not in names:
        return f"no longer tagged {pilot_tag!r}"
    status = [n for n in names if n in STATUS_TAGS]
    if status:
        return f"carries {', '.join(status)}"
    return None
