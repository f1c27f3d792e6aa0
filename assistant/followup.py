"""Follow-up questions: an elliptic question is made standalone from the previous turn.

「那广元呢」 after 「南充和达州各自的城市定位是什么？」 names a new entity: it takes the place of the
entities the previous question named (→ 「广元的城市定位是什么？」), and the previous answer's
evidence clauses that mention the new entity are preferred. A follow-up without a new entity
(「它的目标是多少」) is read together with the previous question and the clauses it cited.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from .citations import places_in
from .evidence import split_question
from .templates import render

FOLLOWUP_RE = re.compile(
    r"^(那|那么|还有|另外|再说说|它|它们|这个|那个|该|其|这条|那条|上面|上述|刚才|前面|此外)"
    r"|它|其中|这些|那些|该条|这条|那条|上述|这方面|那方面|(呢|吗)[？?。]?$"
)
# What may follow the named entities and belongs to them: 「南充和达州各自的…」.
_AFTER_NAMES = re.compile(r"^(各自|分别|两市|两地|三市|都|均)?")
_JOINERS = "和与及、跟同"


@dataclass(frozen=True)
class Rewrite:
    """The standalone question, and whether it is a plain question (entity substituted)."""

    question: str
    standalone: bool
    entities: tuple[str, ...] = ()  # the entities the follow-up introduced


def substitute(previous: str, entities: list[str], places: Collection[str]) -> str | None:
    """The first part of `previous` that names places, with those places replaced by `entities`."""
    for part in split_question(previous):
        named = places_in(part, places)
        if not named:
            continue
        start = part.index(named[0])
        end = max(part.index(p) + len(p) for p in named)
        between = part[start:end]
        for p in named:
            between = between.replace(p, "")
        if between.strip(_JOINERS):
            named, end = named[:1], start + len(named[0])  # places not in one list: the first
        end += _AFTER_NAMES.match(part[end:]).end()
        return part[:start] + "和".join(entities) + part[end:]
    return None


def rewrite(question: str, previous_question: str, previous_labels: str,
            places: Collection[str]) -> Rewrite:
    """Make a follow-up standalone (call only for questions FOLLOWUP_RE matches)."""
    entities = places_in(question, places)
    if entities:
        standalone = substitute(previous_question, entities, places)
        if standalone:
            return Rewrite(standalone, True, tuple(entities))
    return Rewrite(render("followup", question=question, previous_question=previous_question,
                          previous_labels=previous_labels), False, tuple(entities))
