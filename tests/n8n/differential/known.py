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

_known("missing-global", "Intl.Collator's compare, Intl.PluralRules and Intl.RelativeTimeFormat "
       "are missing in ours", "intl-collator-sort", "intl-plural-relative")

_known("paired-items", "node data by item index in each-item mode: n8n resolves "
       "$('Node').item through paired items and fails $node['Node'] past the node's last "
       "item; ours does the reverse",
       "legacy-node-dict-each", "node-item-each-mode")

_known("locale-and-zone", "toLocaleUpperCase/localeCompare ignore the locale in ours "
       "('ISTANBUL' for tr-TR, accents sorted after z)", "tolocale-upper", "str-localecompare-sort")
_known("locale-and-zone", "Date.prototype.toString has no zone name in ours "
       "('GMT+0000' vs 'GMT+0000 (Coordinated Universal Time)')", "date-tostring-local")
_known("luxon", "luxon's toLocaleString asks Intl.DateTimeFormat for formatToParts, which our "
       "Intl lacks: an error naming it", "luxon-locale")

_known("helpers-rpc", "this.helpers is missing in ours; n8n's runner forwards it to n8n as rpc",
       "helpers-http", "this-helpers-type")

_known("error-text", "QuickJS's wording of an error caught by the code, not V8's ('cannot read "
       "property ... of', 'not a function' without the callee, ...)",
       "err-catch-message", "err-catch-message-undefined-call", "err-catch-not-iterable",
       "err-catch-read-prop-of-undefined-key", "err-catch-bigint-mix", "err-catch-readonly",
       "err-catch-invalid-date", "err-catch-null-destructure", "err-catch-in-operator",
       "err-catch-undefined-call-result", "err-catch-regexp", "err-catch-tofixed",
       "err-catch-decode-uri", "err-catch-cyclic-stringify")
_known("error-text", "QuickJS's wording where V8's is not matched yet (toFixed's range, "
       "destructuring undefined, JSON.parse's '(line L column C)', syntax errors)",
       "err-tofixed-range", "err-undefined-not-iterable", "err-syntax",
       "err-syntax-await-in-sync-fn")
_known("error-location", "n8n adds no '[line N]' to this error (a SyntaxError at parse time, an "
       "error raised inside btoa)", "err-syntax-unclosed", "btoa-unicode-error")
_known("error-location", "n8n names the line of the throw, ours the line where the Error "
       "object was made (a subclass's constructor)", "err-throw-custom-class")

_known("engine-deviation", "QuickJS differs from V8 where our layer could match it: spreading a "
       "string, objects of n8n's data from another realm (instanceof Array false in n8n), an "
       "Error's stack starting with its frames instead of 'Error: msg'",
       "spread-string", "instanceof-array-input", "err-catch-stack-first-line")
