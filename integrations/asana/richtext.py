"""Asana rich text (`html_notes`, `html_text`) to plain text: the one converter every reader
of rich text uses (task descriptions for the executor, goal descriptions, comment checks).

Asana's "Rich text" developer doc (https://developers.asana.com/docs/rich-text, "Reading
rich text") says the API returns an HTML fragment wrapped in `<body>`, guaranteed to be
valid XML, with these tags: `<body>`, `<strong>`, `<em>`, `<u>`, `<s>`, `<code>`, `<ol>`,
`<ul>`, `<li>`, `<a>`; and in the rich text of only some objects `<h1>`, `<h2>`, `<hr>`,
`<img>`, `<table>`, `<tr>`, `<td>`, `<blockquote>`, `<pre>` and `<object>` embeds. Line breaks
are literal newlines in the text (the doc's "Blocks and whitespace"), so they are kept; Asana
adds tags over time ("New rich text formats"), so an unknown tag keeps its text.

The result keeps the structure readable: every block (paragraph, heading, list item, quote,
code block, rule, image, table row) on its own line; list items as `- ` or `1. ` indented by
nesting; table cells of a row joined by ` | `; quotes as `> `; `<pre>` verbatim; an external
link as `text (url)`; an image as `[image: alt]`.

The standard library's HTMLParser is enough here: the input is small, well-formed and uses a
fixed set of tags, it never raises on malformed input, and it needs no dependency.
"""

import re
from html.parser import HTMLParser

_BLOCKS = frozenset(
    {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "object", "table"}
)
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
CELL_SEPARATOR = " | "
RULE = "---"


class _Converter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = [""]
        self.lists: list[list] = []  # [tag, next number] per open list
        self.quote_depth = 0
        self.pre_depth = 0
        self.cell_depth = 0
        self.first_cell = True
        self.links: list[tuple[str, int, int]] = []  # (href, column and line count at its start)

    # -- writing ---------------------------------------------------------------------------

    def _break(self) -> None:
        """Start a new line unless the current one is empty (a cell stays on its row)."""
        if self.cell_depth:
            self._write(" ")
        elif self.lines[-1].strip(" >"):
            self.lines.append("")

    def _write(self, text: str, *, verbatim: bool = False) -> None:
        """Add text to the current line; a newline in it starts another. Outside `<pre>`
        (and unless `verbatim`), runs of spaces shrink to one and a line starts with none."""
        for n, piece in enumerate(text.split("\n")):
            if n:
                if self.cell_depth:
                    piece = " " + piece
                else:
                    self.lines.append("")
            if not self.lines[-1] and self.quote_depth:
                self.lines[-1] = "> " * self.quote_depth
            if not (self.pre_depth or verbatim):
                piece = _SPACES.sub(" ", piece)
                if not self.lines[-1].strip(" >"):
                    piece = piece.lstrip(" ")
            self.lines[-1] += piece

    # -- parsing ---------------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag in _BLOCKS:
            self._break()
        if tag == "blockquote":
            self.quote_depth += 1
        elif tag == "pre":
            self.pre_depth += 1
        elif tag in ("ul", "ol"):
            self._break()
            self.lists.append([tag, 1])
        elif tag == "li":
            self._break()
            depth = max(len(self.lists), 1)
            kind, number = self.lists[-1] if self.lists else ("ul", 1)
            marker = f"{number}. " if kind == "ol" else "- "
            if self.lists:
                self.lists[-1][1] += 1
            self._write("  " * (depth - 1) + marker, verbatim=True)
        elif tag == "tr":
            self._break()
            self.first_cell = True
        elif tag in ("td", "th"):
            if not self.first_cell:
                self._write(CELL_SEPARATOR)
            self.first_cell = False
            self.cell_depth += 1
        elif tag == "br":
            self._write("\n")
        elif tag == "hr":
            self._break()
            self._write(RULE)
            self._break()
        elif tag == "img":
            alt = " ".join((attr.get("alt") or "").split()) or (attr.get("src") or "")
            self._break()
            self._write(f"[image: {alt}]" if alt else "[image]")
            self._break()
        elif tag == "a":
            # A mention of something in Asana (data-asana-type) reads as its name, as in
            # Asana's own plain text; an external link keeps its address.
            href = "" if attr.get("data-asana-type") else (attr.get("href") or "")
            self.links.append((href, len(self.lines[-1]), len(self.lines)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in ("br", "hr", "img"):
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "blockquote":
            self.quote_depth = max(self.quote_depth - 1, 0)
        elif tag == "pre":
            self.pre_depth = max(self.pre_depth - 1, 0)
        elif tag in ("ul", "ol"):
            if self.lists:
                self.lists.pop()
            self._break()
        elif tag in ("td", "th"):
            self.cell_depth = max(self.cell_depth - 1, 0)
        elif tag in ("tr", "li"):
            self._break()
        elif tag == "a" and self.links:
            href, start, line_count = self.links.pop()
            text = self.lines[-1][start:] if line_count == len(self.lines) else self.lines[-1]
            if href and href.strip() != text.strip():
                self._write(f" ({href})" if text.strip() else href)
        if tag in _BLOCKS:
            self._break()

    def handle_data(self, data: str) -> None:
        self._write(data)

    def text(self) -> str:
        lines = [line.rstrip() for line in self.lines]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


def to_text(html: str | None, limit: int | None = None) -> str:
    """Plain text of Asana rich text (a `<body>…</body>` string; None or "" gives "").

    `limit` cuts the result to that many characters, the last one an ellipsis. Never raises:
    malformed markup keeps its text.
    """
    if not html:
        return ""
    converter = _Converter()
    converter.feed(html)
    converter.close()
    text = converter.text()
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text
