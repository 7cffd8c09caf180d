"""Values from outside (the address's query parameters, an upload's file name) shown as text.

Status lines are Markdown and toasts are HTML: a value put into either unescaped would be
rendered as markup (``?image=<div style=...>`` laid a red box over the page). ``plain`` is the
one way such a value, or a message that quotes one, enters them.
"""
from __future__ import annotations

#: Longest value shown whole; a longer one is cut, and says so with "…".
LIMIT = 300


def plain(value: object, limit: int = LIMIT) -> str:
    """``value`` as text that Markdown and HTML both show as written: cut to ``limit``
    characters, then every ASCII character other than a letter, digit or space written as a
    numeric character reference (``<`` as ``&#60;``, ``_`` as ``&#95;``), so no tag, entity,
    emphasis, link, autolink or formula can start in it. Other characters (σ, …) stay as they are."""
    if limit < 1:
        raise ValueError(f"limit must be a whole number of at least 1, got {limit!r}")
    text = str(value)
    if len(text) > limit:
        text = text[:limit - 1] + "…"
    return "".join(c if c.isalnum() or c == " " or not c.isascii() else f"&#{ord(c)};" for c in text)
