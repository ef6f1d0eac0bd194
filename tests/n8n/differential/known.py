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

_known("redeclared-names", "a top-level const/let/var of a name n8n provides (items, item, "
       "console) is a SyntaxError in ours (the wrapper binds them as parameters); n8n's vm "
       "context lets user code redeclare them",
       "map-add-field", "reduce-return-object", "redeclare-const-items", "redeclare-let-items",
       "redeclare-const-item", "redeclare-let-item-all", "redeclare-console", "each-input-item")

_known("undefined-values", "undefined values become null in ours; n8n's JSON drops the key",
       "undefined-value-dropped", "undefined-from-missing-field", "undefined-nested",
       "undefined-optional-chain", "undefined-each", "object-assign-items")

_known("input-item-all-mode", "$input.item in 'Run Once for All Items' is refused by ours; "
       "n8n gives the first item", "input-item-in-all-mode", "input-item-in-all-mode-webhook")

_known("each-item-output", "in each-item mode ours returns no items when the code never reads "
       "its input; n8n runs the code once per input item",
       "each-constant-output", "each-ignores-input", "each-no-input-read", "each-only-other-node")

_known("legacy-item-api", "$item(i) / $items('Node') are missing in ours; n8n 2.41 still has them",
       "legacy-item-fn", "legacy-item-fn-node", "legacy-items-fn", "legacy-items-no-arg")

_known("paired-items", "node data by item index in each-item mode: n8n resolves "
       "$('Node').item through paired items and fails $node['Node'] past the node's last "
       "item; ours does the reverse",
       "legacy-node-dict-each", "node-item-each-mode")

_known("missing-global", "Buffer is not defined in ours (n8n's runner has Node's Buffer)",
       "buffer-base64-decode", "buffer-base64-encode", "buffer-hex", "buffer-length-utf8",
       "buffer-concat", "buffer-json", "buffer-base64url", "buffer-in-output", "binary-create",
       "global-this-keys")
_known("missing-global", "Intl is not defined in ours",
       "intl-number-format", "intl-number-en", "intl-date-format", "intl-date-tz",
       "intl-plural-relative", "intl-collator-sort", "tz-intl-resolved")
_known("missing-global", "TextEncoder/TextDecoder are not defined in ours", "textencoder")
_known("missing-global", "setTimeout/setInterval are not defined in ours",
       "settimeout-promise", "settimeout-value", "setinterval-clear", "sleep-helper-each")

_known("extra-global", "queueMicrotask exists in ours; n8n's vm context has none, so n8n fails "
       "with 'queueMicrotask is not defined'", "queue-microtask")

_known("locale-and-zone", "toLocale*String/localeCompare ignore the locale and time zone in "
       "ours (en-US text in UTC, or no grouping); n8n formats with ICU",
       "tolocale-number", "tolocale-number-de", "tolocale-currency", "tolocale-date-de",
       "tolocale-date-string", "tolocale-time-string", "tolocale-upper", "str-localecompare-sort")
_known("locale-and-zone", "Date.prototype.toString has no zone name in ours "
       "('GMT+0000' vs 'GMT+0000 (Coordinated Universal Time)')", "date-tostring-local")
_known("locale-and-zone", "$now/$today carry no zone in ours; n8n's are in GENERIC_TIMEZONE",
       "tz-now-zone")

_known("luxon", "luxon (DateTime, Duration, Interval; $now/$today as DateTime) is missing in ours",
       "luxon-fromiso", "luxon-plus", "luxon-setzone", "luxon-diff", "luxon-duration",
       "luxon-interval", "luxon-each", "luxon-from-format", "luxon-locale", "luxon-now-relative",
       "luxon-invalid", "now-type", "tz-luxon-local")

_known("jmespath", "$jmespath is missing in ours", "jmespath-basic", "jmespath-filter",
       "jmespath-each")

_known("require-builtin", "require('crypto') under NODE_FUNCTION_ALLOW_BUILTIN=crypto works in "
       "n8n; ours refuses every module",
       "require-crypto-hash", "require-crypto-md5", "require-crypto-hmac", "require-crypto-random",
       "require-crypto-uuid")

_known("helpers-rpc", "this.helpers is missing in ours; n8n's runner forwards it to n8n as rpc",
       "helpers-http", "this-helpers-type")

_known("error-text", "QuickJS's wording of an error, not V8's ('cannot read property ... of', "
       "'not a function' without the callee, JSON.parse's messages, ...)",
       "err-not-a-function", "err-not-a-function-method", "err-read-undefined", "err-read-null",
       "err-read-undefined-index", "err-set-undefined", "err-not-iterable",
       "err-undefined-not-iterable", "err-not-a-constructor", "err-call-undefined-fn",
       "err-const-assign", "err-tdz", "err-invalid-array-length", "err-tofixed-range",
       "err-map-on-object", "err-length-of-undefined", "err-json-parse-invalid",
       "err-json-parse-undefined", "err-json-parse-trailing", "err-in-callback",
       "err-nested-fn-line", "err-message-with-line", "err-syntax", "err-syntax-await-in-sync-fn",
       "err-catch-message", "err-catch-message-undefined-call", "err-catch-not-iterable",
       "err-catch-read-prop-of-undefined-key", "err-catch-bigint-mix", "err-catch-readonly",
       "err-catch-invalid-date", "err-catch-null-destructure", "err-catch-in-operator",
       "err-catch-undefined-call-result", "err-catch-regexp", "err-catch-tofixed",
       "err-catch-decode-uri", "err-catch-cyclic-stringify", "json-parse-fenced",
       "ai-extract-json-throws", "each-typeerror-null", "btoa-unicode-error")
_known("error-text", "a module n8n refuses is named as n8n names it: \"Module 'x' is disallowed\"",
       "require-fs", "require-lodash", "require-node-prefix")
_known("error-text", "n8n says \"Referenced node doesn't exist\" without the name or a line",
       "node-missing")

_known("error-location", "n8n 2.41 writes '[line N]' without ', for item N' in each-item mode",
       "each-throw-on-second", "err-throw-in-each")
_known("error-location", "n8n shows the first line of a multi-line Error message",
       "err-throw-multiline")
_known("error-location", "n8n names the line of the throw, ours the line where the Error "
       "object was made (a subclass's constructor)", "err-throw-custom-class")
_known("error-location", "n8n adds no '[line N]' to this error (a SyntaxError, or $env denied)",
       "err-syntax-unclosed", "env-access")

_known("thrown-values", "a thrown non-Error is shown as n8n's JSON.stringify of it "
       "('\"just a string\"', 'null'); ours shows it bare, and reports a thrown null as out "
       "of memory", "err-throw-string", "err-async-reject-plain", "err-throw-null")

_known("result-validation", "n8n validates the returned items and says what is wrong as its "
       "runner does ('Code doesn't return items properly', \"A 'json' property isn't an "
       "object [item 0]\", 'Unknown top-level item key', 'Invalid output format'); ours "
       "words it otherwise or lets it through",
       "return-array-of-strings", "return-string", "return-number", "return-undefined",
       "return-mixed-wrapped", "return-item-with-extra-keys", "undefined-top-level-value",
       "each-return-array-error", "each-return-array-one", "each-return-string",
       "each-returns-constant-array-wrapped")

_known("serialization", "returned values are serialized as our codec does, not as n8n's "
       "JSON (Date as ISO text, Map/Set/typed arrays as objects, BigInt as text, functions "
       "dropped, toJSON honoured, lone surrogates kept, a cycle 'Unknown error')",
       "return-date-object", "return-map-set", "return-typed-array", "return-bigint-error",
       "return-function-value", "return-tojson", "return-unicode", "return-circular")

_known("engine-deviation", "QuickJS differs from V8 where our layer could match it: spreading a "
       "string, $binary null (n8n: {}), objects of n8n's data from another realm (instanceof "
       "Array false in n8n), an Error's stack starting with its frames instead of 'Error: msg'",
       "spread-string", "binary-json-each", "instanceof-array-input", "err-catch-stack-first-line")
