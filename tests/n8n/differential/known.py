"""Known differences between n8n's own JavaScript runner and ours on the corpus, as of today's
main: case id -> (category, reason). The differential test asserts each of these AS a
difference, so that one which gets fixed fails the test until it is taken off this list; a
difference not listed here fails it too.

Every category but ``isolation`` names a gap of our Code node layer that issue 20 closes;
``isolation`` is intended (what the jail or one of our limits denies on purpose) and stays.
``regression`` marks cases that agreed before the JavaScript Code node work of issue 20 was
merged (measured on the commit before it) and differ since.
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

# -- regressions: these agreed before the JavaScript Code node work of issue 20 was merged ----

_known("regression", "$binary of an item without binary data in each-item mode: n8n's is == null "
       "and yet JSON.stringify($binary) is '{}' (binary-json-each); ours is {}, which "
       "agrees with the second and not the first", "each-binary-empty")

# -- gaps of our Code node layer (issue 20) --------------------------------------------------

_known("paired-items", "node data by item index in each-item mode: n8n resolves "
       "$('Node').item through paired items and fails $node['Node'] past the node's last "
       "item; ours does the reverse", "node-item-each-mode")

_known("luxon", "luxon's toLocaleString asks Intl.DateTimeFormat for formatToParts, which our "
       "Intl lacks: an error naming it", "luxon-locale")

_known("helpers-rpc", "this.helpers is missing in ours; n8n's runner forwards it to n8n as rpc",
       "helpers-http")

_known("error-text", "a destructuring error caught by the code: QuickJS puts it at the start of "
       "the function, so the expression V8 names ('5 is not iterable', \"Cannot destructure "
       "property 'a' of 'null'\") is not known; ours keeps QuickJS's words",
       "err-catch-not-iterable", "err-catch-null-destructure")
_known("error-text", "an invalid RegExp caught by the code: V8 names the pattern and the fault "
       "('Invalid regular expression: /(/: Unterminated group'), ours QuickJS's words",
       "err-catch-regexp")
_known("engine-deviation", "QuickJS differs from V8 where our layer could match it: spreading a "
       "string, objects of n8n's data from another realm (instanceof Array false in n8n)",
       "spread-string", "instanceof-array-input")
