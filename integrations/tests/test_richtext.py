"""Asana rich text to plain text: every element Asana's "Rich text" doc lists, in one
converter that tasks and goals share."""

import pytest

from integrations.asana.richtext import to_text


# One case per tag of https://developers.asana.com/docs/rich-text ("Reading rich text"),
# in the shapes Asana returns them.
@pytest.mark.parametrize(
    ("tag", "html", "text"),
    [
        ("body", "<body>Just text</body>", "Just text"),
        ("strong", "<body>a <strong>bold</strong> word</body>", "a bold word"),
        ("em", "<body>an <em>italic</em> word</body>", "an italic word"),
        ("u", "<body>an <u>underlined</u> word</body>", "an underlined word"),
        ("s", "<body>a <s>struck</s> word</body>", "a struck word"),
        ("code", "<body>run <code>make test</code> now</body>", "run make test now"),
        (
            "ul/li",
            "<body>Plan:<ul><li>one</li><li>two</li></ul>Done</body>",
            "Plan:\n- one\n- two\nDone",
        ),
        ("ol/li", "<body><ol><li>first</li><li>second</li></ol></body>", "1. first\n2. second"),
        (
            "nested lists",
            "<body><ul><li>a<ol><li>a1</li><li>a2</li></ol></li><li>b</li></ul></body>",
            "- a\n  1. a1\n  2. a2\n- b",
        ),
        (
            "a (external link)",
            '<body>see <a href="https://example.com/spec">the spec</a>.</body>',
            "see the spec (https://example.com/spec).",
        ),
        (
            "a (link whose text is its address)",
            '<body><a href="https://example.com">https://example.com</a></body>',
            "https://example.com",
        ),
        (
            "a (@-mention)",
            '<body>ask <a href="https://app.asana.com/0/42/list" data-asana-gid="42" '
            'data-asana-type="user" data-asana-accessible="true">@Ada</a></body>',
            "ask @Ada",
        ),
        ("h1", "<body><h1>Title</h1>text</body>", "Title\ntext"),
        ("h2", "<body>intro<h2>Section</h2>text</body>", "intro\nSection\ntext"),
        ("hr", "<body>above<hr/>below</body>", "above\n---\nbelow"),
        (
            "img",
            '<body>before<img data-gid="7" src="https://s3.example/shot.png" '
            'alt="&#10;shot.png" style="display:block"/>after</body>',
            "before\n[image: shot.png]\nafter",
        ),
        (
            "table/tr/td",
            "<body><table><tr><td>Region</td><td>Target</td></tr>"
            "<tr><td>EMEA</td><td>10</td></tr></table></body>",
            "Region | Target\nEMEA | 10",
        ),
        (
            "blockquote",
            "<body>said:<blockquote>ship it\nnow</blockquote>ok</body>",
            "said:\n> ship it\n> now\nok",
        ),
        (
            "pre",
            "<body><pre>def f():\n    return  1</pre>after</body>",
            "def f():\n    return  1\nafter",
        ),
        (
            "object (embed)",
            '<body>before<object type="application/vnd.asana.project_milestones" '
            'data-asana-gid="5"></object>after</body>',
            "before\nafter",
        ),
    ],
)
def test_each_rich_text_element_reads_as_plain_text(tag, html, text):
    assert to_text(html) == text


def test_line_breaks_in_the_text_are_kept_and_blank_runs_shortened():
    assert to_text("<body>one\ntwo\n\n\n\nthree   four</body>") == "one\ntwo\n\nthree four"


def test_entities_are_unescaped():
    assert to_text("<body>a &lt;b&gt; &quot;c&quot; &amp; d</body>") == 'a <b> "c" & d'


def test_a_tag_asana_adds_later_keeps_its_text():
    assert to_text("<body>a <mark>new</mark> tag</body>") == "a new tag"


def test_malformed_markup_keeps_its_text_and_never_raises():
    assert to_text("<body><ul><li>open<li>crash</ul></strong>tail <em>x</body>") == (
        "- open\n- crash\ntail x"
    )


@pytest.mark.parametrize("empty", [None, "", "<body></body>"])
def test_nothing_gives_an_empty_string(empty):
    assert to_text(empty) == ""


def test_a_limit_cuts_with_an_ellipsis():
    assert to_text(f"<body>{'x' * 50}</body>", limit=10) == "x" * 9 + "…"
