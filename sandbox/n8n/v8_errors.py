"""An error of a JavaScript Code node as n8n's own runner reports it: V8's words, n8n's shape.

n8n's runner runs the user's code in a ``vm`` context, so what the code throws is not an
``Error`` of the runner's realm and becomes an ``ExecutionError``: its message is the first
``Type: details`` row of the stack split at its first ``: `` (a multi-line message shows its
first line; ``Error: a: b`` shows ``a: b``), then ``[line N]``, N being the line of the
innermost named user function on the stack, else of ``VmCodeWrapper`` (no item index: n8n
2.41 passes none). A thrown value that is not error-like reads as its ``JSON.stringify``
(``"text"``, ``404``, ``null``), else ``Unknown error``. Errors of n8n's own realm (its data
proxy's) pass unchanged.

QuickJS words some errors differently from V8 (``not a function`` where V8 names the callee,
``cannot read property 'x' of undefined``, ...). ``v8_message`` rewords them, naming the
expression from the user's source at the error's position as V8's call printer would
(member chains, calls as ``(...)``, ``['k']`` as ``.k``). Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import Any

Frame = tuple[str, int, int]  # function name ("" when anonymous), line, column (0: native)

_IDENT = re.compile(r"[A-Za-z0-9_$\u00c0-\uffff]")
_KEY = re.compile(r"""\[\s*(['"])([A-Za-z_$][A-Za-z0-9_$]*)\1\s*\]""")

_SIMPLE: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^cannot read property '(.*)' of (undefined|null)$"),
     r"Cannot read properties of \2 (reading '\1')"),
    (re.compile(r"^cannot set property '(.*)' of (undefined|null)$"),
     r"Cannot set properties of \2 (setting '\1')"),
    (re.compile(r"^'(.*)' is read-only$"), "Assignment to constant variable."),
    (re.compile(r"^(.*) is not initialized$"), r"Cannot access '\1' before initialization"),
    (re.compile(r"^invalid array length$"), "Invalid array length"),
    (re.compile(r"^invalid date$"), "Invalid time value"),
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


def v8_message(name: str, message: str, code: str, where: tuple[int, int] | None) -> str:
    """QuickJS's ``message`` worded as V8 words it; ``where`` is the (line, column) in
    ``code`` of the frame that raised it, when that frame is the user's."""
    lines = code.split("\n")
    text = lines[where[0] - 1] if where and 0 < where[0] <= len(lines) and where[1] > 0 else None
    col = where[1] if where else 0
    iterator = re.match(r"^cannot read property 'Symbol\.iterator' of (undefined|null)$", message)
    if message in ("value is not iterable", "not iterable") or iterator:
        expr = _chain_right(text, col - 1) if text is not None else None
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


def user_frames(frames: list[Frame], user_lines: int) -> list[Frame]:
    """The frames of the user's code: from the first on one of its lines (frames of the
    library functions above it skipped) down to ``VmCodeWrapper``; below it, or past a
    frame on no user line, are the wrapper's and the executor's frames."""
    out: list[Frame] = []
    for frame in frames:
        fn, line, _ = frame
        if line > user_lines:
            if out:
                break
            continue
        if line > 0:
            out.append(frame)
        if fn == "VmCodeWrapper":
            break
    return out


def line_number(frames: list[Frame], user_lines: int) -> int | None:
    """The line n8n's runner names: the innermost named user function's, else the
    top-level code's (``VmCodeWrapper``)."""
    user = user_frames(frames, user_lines)
    for fn, line, _ in user:
        if fn and fn not in ("VmCodeWrapper", "<anonymous>", "<eval>"):
            return line
    for fn, line, _ in user:
        if fn == "VmCodeWrapper":
            return line
    return None


def execution_error(info: dict[str, Any], code: str, user_lines: int) -> dict[str, Any]:
    """The ``error`` n8n's runner sends for what the code threw, described by library/n8n.js's
    ``errorOf`` as ``info``: message, description, lineNumber (when known), stack."""
    kind = info.get("kind")
    if kind == "host":
        message = str(info.get("message", ""))
        return {"message": message, "description": None, "stack": f"Error: {message}"}
    if kind in ("value", "null"):  # not error-like: n8n's runner words it as its JSON
        text = "null" if kind == "null" else info.get("text")
        return _from_rows([""], None, text if isinstance(text, str) else "")
    if kind != "error":
        stack = info.get("stack") if kind == "errorlike" else None
        rows = str(stack).split("\n") if isinstance(stack, str) else [""]
        return _from_rows(rows, None, str(info.get("message", "")))
    frames: list[Frame] = [(str(f[0]), int(f[1]), int(f[2])) for f in info.get("frames") or []]
    name, message = str(info.get("name", "Error")), str(info.get("message", ""))
    top = frames[0] if frames and 0 < frames[0][1] <= user_lines else None
    message = v8_message(name, message, code, (top[1], top[2]) if top else None)
    header = f"{name}: {message}" if message else name
    shown = user_frames(frames, user_lines)
    rows = [*header.split("\n"),
            *(f"    at {fn} (<code>:{line}:{col})" if fn and fn != "<anonymous>"
              else f"    at <code>:{line}:{col}" for fn, line, col in shown)]
    return _from_rows(rows, line_number(frames, user_lines), message)


# n8n 2.41's ExecutionError (@n8n/task-runner, errors/execution-error.ts): the message row is
# the first "Type: details" row of the stack's header (after a source excerpt's caret row),
# split at its FIRST ": "; without one, the error's own message, else "Unknown error"
_HEADER = re.compile(r"^(\S.*?): (.+)$")
_FRAME_ROW = re.compile(r"^\s+at\s")
_CARET_ROW = re.compile(r"^\s*\^+\s*$")


def _from_rows(rows: list[str], line: int | None, message: str) -> dict[str, Any]:
    first_frame = next((i for i, r in enumerate(rows) if _FRAME_ROW.match(r)), len(rows))
    head = rows[:first_frame]
    after_excerpt = max((i + 1 for i, r in enumerate(head) if _CARET_ROW.match(r)), default=0)
    found = next((m for r in head[after_excerpt:] if (m := _HEADER.match(r))), None)
    details = found.group(2).strip() or None if found else None
    kind = found.group(1) if found else None
    out: dict[str, Any] = {"description": None if kind is None or kind.lower() == "error" else kind,
                           "stack": "\n".join(rows)}
    if line is not None:
        out["lineNumber"] = line
    display = f"[line {line}]" if line is not None else ""
    out["message"] = f"{details or message or 'Unknown error'} {display}".strip()
    return out
