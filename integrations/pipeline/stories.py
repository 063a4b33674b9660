"""A task's stories as the pipeline reads them: its comment thread and who added the pilot
tag, from one paged `GET /tasks/{task_gid}/stories`.

Asana lists stories oldest first and offers no other order and no way to start at the end
(asana_oas.yaml, getStoriesForTask: `limit` and `offset` only; offsets are opaque), so the
newest comments are found by reading every page (100 stories each; most tasks have one
page) while only the last `max_comments` are kept in memory. The read is as bounded as any
list (ASANA_MAX_PAGES).

Comment text is Asana's rich text (`html_text`) made plain by the product's one converter
(`integrations.asana.richtext.to_text`), plain `text` when there is none. It is written by
anyone who can comment on the task: it is data for the executor, never an instruction to
pilotsite.
"""

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache

from integrations.asana.client import AsanaClient
from integrations.asana.richtext import to_text

# What reading the thread uses, from getStoriesForTask's opt_fields enum: `created_by`
# always comes with its gid, `tag.name` with the tag's gid (added_to_tag stories).
STORY_FIELDS = (
    "resource_subtype",
    "text",
    "html_text",
    "created_at",
    "created_by.name",
    "tag.name",
)
# Bounds on what reaches the executor: the newest comments, each cut, and the whole thread
# (oldest comments dropped first) within a total.
MAX_COMMENTS = 50
COMMENT_TEXT_LIMIT = 4_000
THREAD_TEXT_LIMIT = 40_000
CUT_MARK = " [cut]"
# A token belongs to one user for its whole life; its user's GID is read once a day per
# process (a cache shared by processes shares it).
TOKEN_USER_CACHE_SECONDS = 86_400


@dataclass(frozen=True)
class Comment:
    """One comment (`comment_added` story): its `gid`, `created_at` (Asana's ISO 8601
    string), its author (`author_gid`, `author`: Asana's name, "" when hidden), its `text`
    (plain, cut to COMMENT_TEXT_LIMIT characters) and whether pilotsite wrote it
    (`by_pilotsite`: the author is the connection token's user)."""

    gid: str
    created_at: str
    author_gid: str
    author: str
    text: str
    by_pilotsite: bool

    def as_input(self) -> dict[str, Any]:
        """The comment as the executor gets it (README, *The executor's input*)."""
        return {
            "author": self.author,
            "created_at": self.created_at,
            "text": self.text,
            "by_pilotsite": self.by_pilotsite,
        }


@dataclass(frozen=True)
class TaskStories:
    """What the stories say: `comments`, newest last (at most `max_comments`, within
    THREAD_TEXT_LIMIT characters), `omitted` (older comments left out), and `tagger`, the
    user (`{"gid", "name"}`) of the newest story adding one of the pilot tags, or None."""

    comments: list[Comment]
    omitted: int
    tagger: dict[str, str] | None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _ref(value: Any) -> dict[str, str]:
    """A compact object's gid and name ("" for what is missing or not an object)."""
    if not isinstance(value, dict):
        return {"gid": "", "name": ""}
    return {"gid": str(value.get("gid") or ""), "name": _text(value.get("name"))}


def cut(text: str, limit: int) -> str:
    """`text` within `limit` characters, ending with CUT_MARK when something was cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - len(CUT_MARK), 0)] + CUT_MARK


def comment_text(story: dict[str, Any]) -> str:
    """A comment's plain text: its rich text converted, else its `text`."""
    return (to_text(_text(story.get("html_text"))) or _text(story.get("text"))).strip()


def token_user_gid(client: AsanaClient) -> str:
    """The GID of the user whose token `client` uses (`GET /users/me`, cached
    TOKEN_USER_CACHE_SECONDS per token). Raises AsanaError when it cannot be read."""
    key = f"pilotsite:token-user:{client.token_key}"
    gid = cache.get(key)
    if gid is None:
        gid = str(client.get("/users/me", opt_fields=("name",)).get("gid") or "")
        cache.set(key, gid, TOKEN_USER_CACHE_SECONDS)
    return str(gid)


def read_stories(
    client: AsanaClient,
    task_gid: str,
    *,
    own_user_gid: str,
    pilot_tag_gids: Iterable[str] = (),
    max_comments: int = MAX_COMMENTS,
) -> TaskStories:
    """Read a task's stories once and return its comment thread and pilot tagger.

    `own_user_gid` is the connection token's user (`token_user_gid`): their comments are
    marked `by_pilotsite`. `pilot_tag_gids` are the workspace's pilot tags (any of them
    counts). Raises AsanaError (from the client) when the stories cannot be read.
    """
    pilot = {str(g) for g in pilot_tag_gids}
    kept: deque[Comment] = deque(maxlen=max(max_comments, 0))
    total = 0
    tagger: dict[str, str] | None = None
    for story in client.stories(task_gid, STORY_FIELDS):
        subtype = story.get("resource_subtype")
        author = _ref(story.get("created_by"))
        if subtype == "added_to_tag" and _ref(story.get("tag"))["gid"] in pilot:
            tagger = author if author["gid"] else tagger
        if subtype != "comment_added":
            continue
        total += 1
        if max_comments <= 0:
            continue
        kept.append(
            Comment(
                gid=str(story.get("gid") or ""),
                created_at=_text(story.get("created_at")),
                author_gid=author["gid"],
                author=author["name"],
                text=cut(comment_text(story), COMMENT_TEXT_LIMIT),
                by_pilotsite=bool(own_user_gid) and author["gid"] == own_user_gid,
            )
        )
    comments = list(kept)
    size = sum(len(c.text) for c in comments)
    while comments and size > THREAD_TEXT_LIMIT:
        size -= len(comments.pop(0).text)
    return TaskStories(comments=comments, omitted=total - len(comments), tagger=tagger)
