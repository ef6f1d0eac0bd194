"""Known differences between n8n's own JavaScript runner and ours on the corpus, as of today's
main: case id -> (category, reason). The differential test asserts each of these AS a
difference, so that one which gets fixed fails the test until it is taken off this list; a
difference not listed here fails it too.

Every category but ``isolation`` names a gap of our Code node layer that issue 20 closes;
``isolation`` is intended (what the jail or one of our limits denies on purpose) and stays.
"""

from __future__ import annotations

KNOWN: dict[str, tuple[str, str]] = {}


def _known(category: str, reason: str, *ids: str) -> None:
    for cid in ids:
        assert cid not in KNOWN, f"{cid} listed twice"
        KNOWN[cid] = (category, reason)


# -- intended --------------------------------------------------------------------------------

_known("isolation", "our runner caps each task's memory (--memory 256 here): 320 MB of typed "
       "array is refused with a message naming the cap; n8n's runner has no per-task cap",
       "limit-memory-300mb")

# -- gaps of our Code node layer (issue 20) --------------------------------------------------

_known("helpers-rpc", "this.helpers.httpRequest: n8n's runner forwards it to n8n as rpc; ours "
       "fails naming it", "helpers-http")

_known("engine-deviation", "QuickJS differs from V8 and our layer does not reach it: {...'abc'} "
       "spreads nothing; n8n's data comes from another realm there (instanceof Array false, "
       "and its vm context's Object.getPrototypeOf gives a fresh object)",
       "spread-string", "instanceof-array-input")
