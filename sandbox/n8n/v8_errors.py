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

from runtimes.javascript.v8_words import v8_message

Frame = tuple[str, int, int]  # function name ("" when anonymous), line, column (0: native)

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
    if not frames and message == "Maximum call stack size exceeded":
        # the engine has no stack to give at a stack overflow: V8's innermost frame is the
        # recursive call, at the line of the code's first call of a function to itself
        line = _recursive_call_line(code)
        frames = [("", line, 1), ("VmCodeWrapper", line, 1)] if line else []
    top = frames[0] if frames and 0 < frames[0][1] <= user_lines else None
    message = v8_message(name, message, code, (top[1], top[2]) if top else None)
    header = f"{name}: {message}" if message else name
    shown = user_frames(frames, user_lines)
    rows = [*header.split("\n"),
            *(f"    at {fn} (<code>:{line}:{col})" if fn and fn != "<anonymous>"
              else f"    at <code>:{line}:{col}" for fn, line, col in shown)]
    return _from_rows(rows, line_number(frames, user_lines), message)


_DECLARED = re.compile(r"\bfunction\s+([A-Za-z_$][\w$]*)\s*\(|\b([A-Za-z_$][\w$]*)\s*=\s*"
                       r"(?:async\s*)?(?:function\b|\([^()]*\)\s*=>|[A-Za-z_$][\w$]*\s*=>)")


def _recursive_call_line(code: str) -> int | None:
    """The line of the first call a function of ``code`` makes to itself, if any."""
    for found in _DECLARED.finditer(code):
        name = found.group(1) or found.group(2)
        call = re.compile(rf"(?<![\w$.]){re.escape(name)}\s*\(").search(code, found.end())
        if call:
            return code.count("\n", 0, call.start()) + 1
    return None


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
