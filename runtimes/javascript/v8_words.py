"""QuickJS's error messages in V8's words, as a V8-based runtime (Node, n8n's runner) words
them: pure text work on the message, the name of the native function that raised it, and the
source line at the error's position. QuickJS says ``not a function`` where V8 names the
callee, ``cannot read property 'x' of undefined``, ``invalid number of digits``...; V8's words
need the expression from the source, which is named as V8's call printer would (member
chains, calls as ``(...)``, ``['k']`` as ``.k``). A message it does not know is kept.

Used inside the jail (the executor's ``__v8_message``, called from an
``Error.prepareStackTrace`` hook as each error is made, so code that catches an error reads
V8's words) and by the n8n runner for errors it reports. Imports nothing of the project.
"""

from __future__ import annotations

import re

_IDENT = re.compile(r"[A-Za-z0-9_$\u00c0-\uffff]")
_KEY = re.compile(r"""\[\s*(['"])([A-Za-z_$][A-Za-z0-9_$]*)\1\s*\]""")

_SIMPLE: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^cannot read property '(.*)' of (undefined|null)$"),
     r"Cannot read properties of \2 (reading '\1')"),
    (re.compile(r"^cannot set property '(.*)' of (undefined|null)$"),
     r"Cannot set properties of \2 (setting '\1')"),
    (re.compile(r"^(.*) is not initialized$"), r"Cannot access '\1' before initialization"),
    (re.compile(r"^invalid array length$"), "Invalid array length"),
    (re.compile(r"^invalid date$"), "Invalid time value"),
    (re.compile(r"^Date value is NaN$"), "Invalid time value"),
    (re.compile(r"^cannot convert symbol to string$"), "Cannot convert a Symbol value to a string"),
    (re.compile(r"^stack overflow$"), "Maximum call stack size exceeded"),
]


def _is_ident(ch: str) -> bool:
    return bool(_IDENT.match(ch))


def _match_left(text: str, close: int) -> int:
    """The index of the bracket that opens the one at ``close`` (-1 if none)."""
    pairs = {")": "(", "]": "["}
    depth: list[str] = []
    for i in range(close, -1, -1):
        ch = text[i]
        if ch in pairs:
            depth.append(pairs[ch])
        elif ch in "([":
            if not depth or depth.pop() != ch:
                return -1
            if not depth:
                return i
    return -1


def _chain_left(text: str, end: int) -> str | None:
    """The member chain that ends at ``text[:end]``, as V8 prints a callee."""
    out = ""
    i = end
    while True:
        while i > 0 and text[i - 1] in " \t":
            i -= 1
        if i == 0:
            break
        ch = text[i - 1]
        if _is_ident(ch):
            j = i
            while j > 0 and _is_ident(text[j - 1]):
                j -= 1
            out = text[j:i] + out
            i = j
        elif ch == "]":
            j = _match_left(text, i - 1)
            if j < 0:
                return None
            out = _KEY.sub(r".\2", text[j:i]) + out
            i = j
            continue  # an index always has an object before it
        elif ch == ")":
            j = _match_left(text, i - 1)
            if j < 0:
                return None
            k = j
            while k > 0 and text[k - 1] in " \t":
                k -= 1
            if k > 0 and (_is_ident(text[k - 1]) or text[k - 1] in ")]"):
                out = "(...)" + out  # a call: its callee comes next
                i = k
                continue
            return "(intermediate value)" + out  # a parenthesised expression
        else:
            break
        # after an element: a '.' or '?.' continues the chain to the left
        k = i
        while k > 0 and text[k - 1] in " \t":
            k -= 1
        if k > 0 and text[k - 1] == ".":
            dot = "?." if k > 1 and text[k - 2] == "?" else "."
            out = dot + out
            i = k - len(dot)
            continue
        break
    return out or None


def _chain_right(text: str, start: int) -> str | None:
    """The member chain that starts at ``text[start]`` (an iterable, a constructor)."""
    m = re.match(r"(?:[A-Za-z_$][\w$]*|\.|\?\.|\[[^\[\]]*\])+", text[start:])
    if not m:
        return None
    return _KEY.sub(r".\2", m.group(0).rstrip(".?")) or None


def _callee(text: str, col: int) -> str | None:
    """The callee of the call QuickJS reports at column ``col`` (1-based) of ``text``."""
    pos = col - 1
    if not 0 <= pos < len(text):
        return None
    i = pos
    if text[i] == "." or (text[i] == "?" and text[i + 1:i + 2] == "."):
        i += 2 if text[i] == "?" else 1
    if i < len(text) and _is_ident(text[i]):
        while i > 0 and _is_ident(text[i - 1]):
            i -= 1
        j = i
        while j < len(text) and _is_ident(text[j]):
            j += 1
        rest = text[j:].lstrip()
        if rest[:1] in ("(", "`") or rest[:2] == "?.":
            return _chain_left(text, j)
        # at the chain's first name (``fns['run']()``): its members up to the call
        members = _MEMBERS.match(text, j)
        if members and members.group(0) and text[members.end():].lstrip()[:1] in ("(", "`"):
            return (_chain_left(text, j) or "") + _KEY.sub(r".\2", re.sub(r"\s+", "", members.group(0)))
    # QuickJS points into the arguments: the callee is before the innermost open '('
    depth = 0
    for k in range(pos, -1, -1):
        if text[k] == ")":
            depth += 1
        elif text[k] == "(":
            if depth == 0:
                return _chain_left(text, k)
            depth -= 1
    return None


_REGEXP = {"expecting ')'": "Unterminated group", "nothing to repeat": "Nothing to repeat",
           "unexpected end": "Unterminated character class", "unmatched ')'": "Unmatched ')'"}
_REGEXP_CALL = re.compile(r"""\bRegExp\(\s*(['"])((?:(?!\1).)*)\1\s*(?:,\s*(['"])(\w*)\3\s*)?\)""")
_DESTRUCTURED_LITERAL = re.compile(
    r"\[[^\[\]=]*\]\s*=(?!=)\s*(null|undefined|-?\d+(?:\.\d+)?|true|false)\s*[;\n]")


def _only(pattern: re.Pattern[str], code: str) -> re.Match[str] | None:
    """The one match of ``pattern`` in ``code``, when there is exactly one."""
    found = list(pattern.finditer(code))
    return found[0] if len(found) == 1 else None


_MEMBERS = re.compile(r"(?:\s*(?:\??\.\s*[A-Za-z_$][\w$]*|\[[^\[\]]*\]))+")
_NATIVE: dict[tuple[str, str], str] = {
    ("toFixed", "invalid number of digits"): "toFixed() digits argument must be between 0 and 100",
    ("toPrecision", "invalid number of digits"): "toPrecision() argument must be between 1 and 100",
    ("toExponential", "invalid number of digits"):
        "toExponential() argument must be between 0 and 100",
    ("stringify", "circular reference"): "Converting circular structure to JSON",
    ("reduce", "empty array"): "Reduce of empty array with no initial value",
    ("reduceRight", "empty array"): "Reduce of empty array with no initial value",
}
_DESTRUCTURE = re.compile(r"\{\s*([A-Za-z_$][\w$]*)[^{}=]*\}\s*=\s*(null|undefined)\b")
_ITERATED = re.compile(r"(?:\[[^\[\]=]*\]\s*=(?!=)|\bof\b|\.\.\.)\s*([^;,)\]}]+)")
_IN_LITERALS = re.compile(r"""(['"])([^'"]*)\1\s+in\s+(['"])([^'"]*)\3""")
_ASSIGNED_NAME = re.compile(r"[A-Za-z_$][\w$]*\s*(?:[-+*/%&|^]|\*\*|<<|>>>?|&&|\|\||\?\?)?=(?!=)")


def v8_message(name: str, message: str, code: str, where: tuple[int, int] | None,
               native: str | None = None) -> str:
    """QuickJS's ``message`` worded as V8 words it; ``where`` is the (line, column) in
    ``code`` of the frame that raised it, when that frame is the code's own; ``native`` the
    name of the built-in function that raised it, when one did."""
    lines = code.split("\n")
    text = lines[where[0] - 1] if where and 0 < where[0] <= len(lines) and where[1] > 0 else None
    col = where[1] if where else 0
    if native is not None and (native, message) in _NATIVE:
        return _NATIVE[(native, message)]
    if name == "URIError":
        return "URI malformed"
    if message == "cannot convert BigInt to number":
        return ("Cannot convert a BigInt value to a number" if native is not None
                else "Cannot mix BigInt and other types, use explicit conversions")
    read_only = re.match(r"^'(.*)' is read-only$", message)
    if read_only:
        if text is not None and _ASSIGNED_NAME.match(text, col - 1):
            return "Assignment to constant variable."
        return f"Cannot assign to read only property '{read_only.group(1)}' of object '#<Object>'"
    if native == "RegExp" and message in _REGEXP and text is not None:
        found = _REGEXP_CALL.search(text)
        if found:
            return f"Invalid regular expression: /{found.group(2)}/{found.group(4) or ''}: {_REGEXP[message]}"
    if message == "Cannot convert undefined or null to object" and text is not None:
        found = _DESTRUCTURE.search(text) or _only(_DESTRUCTURE, code)
        if found:
            prop, value = found.groups()
            return f"Cannot destructure property '{prop}' of '{value}' as it is {value}."
    if message == "invalid 'in' operand" and text is not None:
        found = _IN_LITERALS.search(text)
        if found:
            return f"Cannot use 'in' operator to search for '{found.group(2)}' in {found.group(4)}"
    iterator = re.match(r"^cannot read property 'Symbol\.iterator' of (undefined|null)$", message)
    if message in ("value is not iterable", "not iterable") or iterator:
        # the line's destructuring, for-of or spread names it, else the position does
        found = _ITERATED.search(text) if text is not None else None
        # QuickJS may put a destructuring's error at its function's start: the code's only
        # destructuring of a literal is then the one
        found = found or _only(_DESTRUCTURED_LITERAL, code)
        expr = found.group(1).strip() if found else None
        if not expr and text is not None:
            expr = _chain_right(text, col - 1)
        if expr:
            return f"{expr} is not iterable"
        value = iterator.group(1) if iterator else "object"
        return f"{value} is not iterable (cannot read property Symbol(Symbol.iterator))"
    for pattern, repl in _SIMPLE:
        if pattern.match(message):
            return pattern.sub(repl, message)
    if message in ("not a function", "not a constructor"):
        what = "function" if message == "not a function" else "constructor"
        expr = None
        if text is not None:
            expr = _callee(text, col) if what == "function" else _chain_right(text, col - 1)
        return f"{expr or '(intermediate value)'} is not a {what}"
    return message


_UNEXPECTED = re.compile(r"^unexpected token in expression: (.*)$")


def v8_syntax_message(message: str, line_text: str | None) -> str:
    """QuickJS's words for code that does not compile, as V8's parser words them, where they
    are known; ``line_text`` is the source line QuickJS names."""
    found = _UNEXPECTED.match(message)
    if found:
        token = found.group(1)
        return f"Unexpected token {token if token.startswith(chr(39)) else repr(token)}"
    if message == "expecting ';'" and line_text is not None and re.search(r"\bawait\b", line_text):
        return "await is only valid in async functions and the top level bodies of modules"
    return message
