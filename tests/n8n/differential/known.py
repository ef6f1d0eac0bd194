"""Known differences between n8n's own JavaScript runner and ours on the corpus, as of today's
main: case id -> (category, reason). The differential test asserts each of these AS a
difference, so that one which gets fixed fails the test until it is taken off this list; a
difference not listed here fails it too.

Every category but ``isolation`` names a gap of our Code node layer that issue 20 closes;
``isolation`` is intended (what the jail or one of our limits denies on purpose) and stays.
"""

from __future__ import annotations

KNOWN: dict[str, tuple[str, str]] = {}
#: Cases whose answer comes from n8n while the task runs (``this.helpers.*`` calls, which n8n
#: itself runs): the live test compares them; without n8n (the golden test, ``--in-jails``)
#: nobody answers the call, so they differ there, and are asserted to.
WITHOUT_N8N: dict[str, tuple[str, str]] = {
    "helpers-http": ("needs-n8n", "this.helpers.httpRequest is a call n8n answers; without n8n "
                                  "no call is offered, and the helper fails naming it"),
}


def _known(category: str, reason: str, *ids: str) -> None:
    for cid in ids:
        assert cid not in KNOWN, f"{cid} listed twice"
        KNOWN[cid] = (category, reason)


# -- intended --------------------------------------------------------------------------------

_known("isolation", "our runner caps each task's memory (--memory 256 here): 320 MB of typed "
       "array is refused with a message naming the cap; n8n's runner has no per-task cap",
       "limit-memory-300mb")

# -- gaps of our Code node layer (issue 20) --------------------------------------------------

_known("engine-deviation", "QuickJS-ng's {...'abc'} spreads nothing (V8: {0:'a',1:'b',2:'c'}), "
       "out of our layer's reach; no later quickjs-ng wheel than the pinned 0.17.0.2 is on "
       "PyPI to fix it", "spread-string")

_known("realm", "n8n's items are its runner's own realm's objects (n8n-workflow's data proxy "
       "runs outside the vm context: $input.all() is a Proxy of a main-realm array), so "
       "instanceof Array is false there; the quickjs-ng binding gives each context its own "
       "runtime (no second realm to build them in), and standing one in by re-prototyping "
       "the task's data costs more than parsing it (about 50 ms per 10,000 items against "
       "30); its jsonProto (false: n8n's vm wrapper replaces Object.getPrototypeOf with "
       "() => ({})) agrees", "instanceof-array-input")
