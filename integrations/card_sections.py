"""Sections other apps add to each Asana connection card on the integrations tab (the goals
app adds its goal sync), registered from their `AppConfig.ready()`, so this app imports none
of them. A section sits in the card's self-refreshing part."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from integrations.models import AsanaConnection


def _never_busy(card: dict[str, Any]) -> bool:
    return False


@dataclass(frozen=True)
class CardSection:
    """One collapsible section of a connection card.

    `card(connection)` builds the template's `card` context; `template` renders it (also
    given `connection` and `liveness`); `busy(card)` says whether something of this section
    runs or waits, which makes the card refresh every 3 s instead of 15 s."""

    slug: str
    title: str
    template: str
    card: Callable[[AsanaConnection], dict[str, Any]]
    busy: Callable[[dict[str, Any]], bool] = _never_busy
    order: int = 100


_sections: dict[str, CardSection] = {}


def register_card_section(section: CardSection) -> None:
    """Add (or replace, by slug) a section of every connection card."""
    _sections[section.slug] = section


def card_sections() -> list[CardSection]:
    """The registered sections in display order."""
    return sorted(_sections.values(), key=lambda s: (s.order, s.slug))
