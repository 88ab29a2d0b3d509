"""The editor's words: what the page calls the things it edits (网格, or in unit mode the
unit layer's own word: 警务单元 / 城管单元 / 应急单元, 单元 for a neighbour).

One source: the :class:`~gridgov.gis.grid_edit.Labels` the editing API titles its refusals
with. A text of the page that names what is edited is written once, as a template with
``{member}`` (网格 / 警务单元), ``{neighbour}`` (网格 / 单元) and ``{memberEn}`` (grid /
police unit), in a ``data-gg-text``, ``data-gg-title`` or ``data-gg-placeholder``
attribute. :func:`worded` fills the templates with the grid's words here, so the page is
served reading as grid mode; ``editor.js`` (``applyWords``, ``say``) fills the same
templates with the words of the mode chosen in the browser.
"""

from __future__ import annotations

import re
from typing import Final

from gridgov.gis.grid_edit import GRID_LABELS, Labels
from gridgov.layers import unit_edit


def words(lb: Labels) -> dict[str, str]:
    """The template words of one set of labels."""
    return {"member": lb.member_zh, "neighbour": lb.neighbour_zh, "memberEn": lb.member_en}


GRID: Final = words(GRID_LABELS)


def unit_words(layer: str) -> dict[str, str]:
    """A unit layer's words, as its edits are titled (警务单元 / 城管单元 / 应急单元)."""
    return words(unit_edit.labels(layer, None))


_ATTRIBUTE: Final = re.compile(r'data-gg-(title|placeholder)="([^"]*)"')
# an element whose text is a template is written empty: <span data-gg-text="…"></span>
_TEXT: Final = re.compile(r'(<[a-z0-9]+\b[^>]*\sdata-gg-text="([^"]*)"[^>]*>)(</)')


def worded(html: str) -> str:
    """``html`` with every template filled with the grid's words (an unknown word is a
    KeyError: a typo fails when the page is rendered, not silently in the browser)."""
    html = _ATTRIBUTE.sub(lambda m: f'{m[0]} {m[1]}="{m[2].format_map(GRID)}"', html)
    return _TEXT.sub(lambda m: f"{m[1]}{m[2].format_map(GRID)}{m[3]}", html)
