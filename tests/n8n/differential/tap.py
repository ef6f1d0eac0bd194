"""``sandbox n8n-runner`` that also records the task data n8n sends it, for the golden test.

    python -m tests.n8n.differential.tap OUT.jsonl [n8n-runner flags...]

Run as ``sandbox n8n-runner`` is, with one difference: each data request asks n8n for
everything (every node's data, the previous node, the input, the environment), whatever our
Code node layer asked for, and every ``broker:taskdataresponse`` is appended to OUT.jsonl. So
the recording serves any later version of our layer, whatever data that version asks for.
"""

from __future__ import annotations

import json
import sys

from sandbox.service.cli import main as sandbox_main
from sandbox.n8n import shell

#: What a data request asks for when it asks for everything (n8n's ``requestParams``).
EVERYTHING = {"dataOfNodes": "all", "prevNode": True, "input": {"include": True}, "env": True}


def install(out_path: str) -> None:
    """Patch the runner's WebSocket: widen data requests, record data responses."""
    out = open(out_path, "a", encoding="utf-8")  # open for the life of the process
    read, send_text = shell.WebSocket.read, shell.WebSocket.send_text

    def recording_read(self: shell.WebSocket) -> list[str]:
        texts = read(self)
        for text in texts:
            if '"broker:taskdataresponse"' in text:
                out.write(text.replace("\n", " ") + "\n")
                out.flush()
        return texts

    def widening_send_text(self: shell.WebSocket, text: str, flush: bool = True) -> None:
        msg = json.loads(text)
        if msg.get("type") == "runner:taskdatarequest":
            chunk = (msg.get("requestParams") or {}).get("input", {}).get("chunk")
            params = json.loads(json.dumps(EVERYTHING))
            if chunk is not None:
                params["input"]["chunk"] = chunk
            msg["requestParams"] = params
            text = json.dumps(msg)
        send_text(self, text, flush)

    shell.WebSocket.read = recording_read  # type: ignore[method-assign]
    shell.WebSocket.send_text = widening_send_text  # type: ignore[method-assign]


if __name__ == "__main__":
    install(sys.argv[1])
    sys.exit(sandbox_main(["n8n-runner", *sys.argv[2:]]))
