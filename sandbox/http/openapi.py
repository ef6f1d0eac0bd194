"""The HTTP API's OpenAPI 3.1 document: its routes, a task's fields, the answers.

A task's options are ``sandbox.request.Options``'s, by name; ``OPTION_SCHEMAS`` gives each
one's JSON type (a test holds its names to ``Options``'s, so a new option cannot go
undescribed). The ranges are not repeated here: the one check (``sandbox.request``) says
them in its 422s.
"""

from __future__ import annotations

from typing import Any

from sandbox import registry

_NUM_OR_NULL = {"type": ["number", "null"], "minimum": 0}
_INT_OR_NULL = {"type": ["integer", "null"], "minimum": 0}
OPTION_SCHEMAS: dict[str, dict[str, Any]] = {
    "timeout_s": {**_NUM_OR_NULL, "description": "wall-clock limit (default: the runner's)"},
    "memory_mb": {**_INT_OR_NULL, "description": "the snippet's address-space budget"},
    "stdout_bytes": {**_INT_OR_NULL, "description": "captured output; the rest is cut"},
    "result_bytes": {**_INT_OR_NULL, "description": "the encoded result's cap"},
    "policy": {"type": ["string", "null"], "enum": ["default", "restricted", None]},
    "imports": {"type": ["array", "null"], "items": {"type": "string"},
                "description": "narrow the import allow-lists (python, pyodide)"},
    "isolation": {"type": ["string", "null"], "enum": ["process", "worker", None]},
    "reuse_key": {"type": ["string", "null"],
                  "description": "worker mode: the caller's workers (within its principal)"},
    "priority": {"type": "integer", "minimum": -1000, "maximum": 1000, "default": 0},
    "lane": {"type": "string", "default": "default"},
    "group": {"type": ["string", "null"], "description": "only runners with this label"},
    "version": {"type": "string", "default": "", "description": "a runtime version prefix"},
    "wait_for_runner": {"type": "boolean", "default": True},
    "queue_timeout_s": _NUM_OR_NULL,
    "idempotent": {"type": "boolean", "default": False},
    "max_attempts": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
    "stdin": {"type": ["string", "object", "null"],
              "description": "python: the snippet's standard input, text or {\"$bytes\": base64}"},
    "separate_stderr": {"type": "boolean", "default": False,
                        "description": "stdout holds standard output only, stderr apart"},
    "stream": {"type": "boolean", "default": False,
               "description": "answer text/event-stream: `stdout` and `stderr` events while "
                              "the task runs, then one `result` event"},
    "files": {"type": ["object", "null"],
              "additionalProperties": {"type": ["string", "object"]},
              "description": "python, with files_mb: written into the task's directory "
                             "(/work) before it runs, by relative name; text or {\"$bytes\": "
                             "base64}"},
    "return_files": {"type": "boolean", "default": False,
                     "description": "what the task wrote in its directory comes back"},
}

_TAGGED = ("any JSON value; what JSON cannot say is tagged: {\"$bytes\": base64}, "
           "{\"$datetime\": ISO 8601}, {\"$float\": \"NaN\"|\"Infinity\"|\"-Infinity\"}, "
           "{\"$int\": digits}, {\"$map\": [[key, value], ...]}, {\"$dict\": {...}}")
_STATUSES = ["ok", "error", "timeout", "memory_limit", "violation", "output_limit", "crashed",
             "session_lost"]


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def json_of(ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": ref}}}


_AUTH_ERRORS = {"401": _problem("no key, or a key that is not known")}


def document(version: str) -> dict[str, Any]:
    """The document, for the program's ``version``."""
    task = {
        "type": "object",
        "additionalProperties": False,
        "required": ["runtime", "code"],
        "properties": {
            "runtime": {"type": "string", "enum": sorted(registry.ALIASES)},
            "code": {"type": "string", "description": "a function body: `return` gives the "
                     "result, the input is bound to `data`"},
            "data": {"description": _TAGGED},
            **OPTION_SCHEMAS,
        },
    }
    result = {
        "type": "object",
        "required": ["status", "result", "stdout", "truncated", "error", "message",
                     "duration_ms", "exec_ms", "stderr", "cpu_ms", "peak_memory_kb", "files",
                     "files_skipped"],
        "properties": {
            "status": {"type": "string", "enum": _STATUSES},
            "result": {"description": "what the snippet returned: " + _TAGGED},
            "stdout": {"type": "string"},
            "truncated": {"type": "boolean"},
            "error": {"oneOf": [{"type": "null"}, {
                "type": "object", "required": ["type", "message", "traceback"],
                "properties": {"type": {"type": "string"}, "message": {"type": "string"},
                               "traceback": {"type": "string"}}}]},
            "message": {"type": "string"},
            "duration_ms": {"type": "number"},
            "exec_ms": {"type": "number"},
            "stderr": {"type": "string", "description": "with separate_stderr; else \"\""},
            "cpu_ms": {"type": ["number", "null"],
                       "description": "CPU time of the task's process (user + system)"},
            "peak_memory_kb": {"type": ["integer", "null"],
                               "description": "peak resident set of the task's process, KiB"},
            "files": {"type": ["object", "null"], "description": "with return_files: what "
                      "the task wrote, by name, each {\"$bytes\": base64}"},
            "files_skipped": {"type": ["object", "null"], "additionalProperties": {
                "type": "string"}, "description": "what did not come back, with why"},
        },
    }
    problem = {
        "type": "object",
        "required": ["title", "status", "detail"],
        "properties": {
            "title": {"type": "string"}, "status": {"type": "integer"},
            "detail": {"type": "string"},
            "fields": {"type": "array", "items": {"type": "string"}},
            "reason": {"type": "string", "description": "why the service did not run the task"},
        },
    }
    runtimes = {
        "type": "object", "required": ["runtimes"],
        "properties": {"runtimes": {"type": "array", "items": {
            "type": "object", "required": ["name", "aliases", "versions", "runners", "slots"],
            "properties": {"name": {"type": "string"},
                           "aliases": {"type": "array", "items": {"type": "string"}},
                           "versions": {"type": "array", "items": {"type": "string"}},
                           "runners": {"type": "integer"}, "slots": {"type": "integer"}}}}},
    }
    seconds = {"type": "number", "exclusiveMinimum": 0, "maximum": 30 * 86400}
    session = {
        "type": "object", "additionalProperties": False, "required": ["runtime"],
        "properties": {
            "runtime": {"type": "string", "enum": sorted(registry.ALIASES)},
            "session_id": {"type": "string", "pattern": "^[A-Za-z0-9._~-]{1,60}$",
                           "description": "its id within the caller's (one made when not "
                           "given); an id the caller has open is attached to"},
            "memory_mb": {**OPTION_SCHEMAS["memory_mb"],
                          "description": "the cap of the session's whole process"},
            "idle_timeout_s": {**seconds, "description": "it ends after this long without a "
                               "call (at most the service's)"},
            "max_lifetime_s": {**seconds, "description": "it ends this long after it opened "
                               "(at most the service's)"},
        },
    }
    call = {
        "type": "object", "additionalProperties": False, "required": ["code"],
        "properties": {
            "code": {"type": "string", "description": "a function body; the names its top "
                     "level binds live on in the session"},
            "data": {"description": _TAGGED},
            **{name: OPTION_SCHEMAS[name] for name in ("timeout_s", "stdout_bytes",
                                                       "result_bytes", "imports")},
            "files": {**OPTION_SCHEMAS["files"],
                      "description": "python, with files_mb: written into the session's "
                      "directory (/work, kept from call to call) before the code runs, "
                      "replacing files of the same name"},
            "return_files": {**OPTION_SCHEMAS["return_files"],
                             "description": "all the session's directory holds comes back"},
        },
    }
    upload = {
        "type": "object", "additionalProperties": False, "required": ["files"],
        "properties": {"files": {**OPTION_SCHEMAS["files"], "type": "object"},
                       "timeout_s": OPTION_SCHEMAS["timeout_s"]},
    }
    call_answers = {
        "200": {"description": "the call ran; its status says how it ended "
                "(session_lost: the session is gone, and why)",
                "content": json_of("#/components/schemas/Result")},
        **_AUTH_ERRORS,
        "404": _problem("the caller has no session of this id open"),
        "422": _problem("a bad field or file name, named; or the session runs another call"),
    }
    opened = {"type": "object", "required": ["id", "runtime"],
              "properties": {"id": {"type": "string"}, "runtime": {"type": "string"}}}
    by_id = [{"name": "id", "in": "path", "required": True,
              "schema": {"type": "string", "pattern": "^[A-Za-z0-9._~-]{1,60}$"}}]
    session_paths = {
        "/v1/sessions": {"post": {
            "operationId": "openSession",
            "summary": "Open a session (or attach to the caller's open one of that id)",
            "requestBody": {"required": True, "content": json_of("#/components/schemas/Session")},
            "responses": {
                "201": {"description": "open", "content": json_of("#/components/schemas/Opened")},
                "400": _problem("the body is not JSON"), **_AUTH_ERRORS,
                "415": _problem("the body is not application/json"),
                "422": _problem("a bad field, named"),
                "429": {**_problem("the session caps (max_sessions_per_principal, "
                                   "max_sessions) or the queue are full"),
                        "headers": {"Retry-After": {"schema": {"type": "integer"}}}},
                "503": _problem("no runner can hold it now"),
            },
        }},
        "/v1/sessions/{id}/run": {"post": {
            "operationId": "callSession", "parameters": by_id,
            "summary": "Run code in a session: its state lives on to the next call",
            "requestBody": {"required": True, "content": json_of("#/components/schemas/Call")},
            "responses": {
                "200": {"description": "the call ran; its status says how it ended "
                        "(session_lost: the session is gone, and why)",
                        "content": json_of("#/components/schemas/Result")},
                "400": _problem("the body is not JSON"), **_AUTH_ERRORS,
                "404": _problem("the caller has no session of this id open"),
                "415": _problem("the body is not application/json"),
                "422": _problem("a bad field, named; or the session runs another call"),
            },
        }},
        "/v1/sessions/{id}/files": {
            "put": {
                "operationId": "uploadSessionFiles", "parameters": by_id,
                "summary": "Write files into a session's directory (a call that runs no code)",
                "requestBody": {"required": True,
                                "content": json_of("#/components/schemas/Upload")},
                "responses": {**call_answers, "400": _problem("the body is not JSON"),
                              "415": _problem("the body is not application/json")},
            },
            "get": {
                "operationId": "downloadSessionFiles", "parameters": by_id,
                "summary": "What a session's directory holds: the Result's `files` (and "
                           "`files_skipped`: what did not come back, with why)",
                "responses": call_answers,
            },
        },
        "/v1/sessions/{id}": {"delete": {
            "operationId": "closeSession", "parameters": by_id,
            "summary": "Close a session: its process and state are gone",
            "responses": {"200": {"description": "closed (or ended already)",
                                  "content": json_of("#/components/schemas/Result")},
                          **_AUTH_ERRORS,
                          "404": _problem("the caller has no session of this id")},
        }},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "snippet-sandbox", "version": version,
                 "description": "Run untrusted Python and JavaScript snippets in jails."},
        "components": {
            "schemas": {"Task": task, "Result": result, "Problem": problem,
                        "Runtimes": runtimes, "Session": session, "Call": call,
                        "Opened": opened, "Upload": upload},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/tasks": {"post": {
                "operationId": "runTask",
                "summary": "Run one snippet and wait for its result",
                "requestBody": {"required": True, "content": json_of("#/components/schemas/Task")},
                "responses": {
                    "200": {"description": "the task ran; its status says how it ended. With "
                                           "`stream`: Server-Sent Events, `stdout` and "
                                           "`stderr` ({\"text\"}) as the output comes, then "
                                           "one `result` (a Result)",
                            "content": {**json_of("#/components/schemas/Result"),
                                        "text/event-stream": {"schema": {"type": "string"}}}},
                    "400": _problem("the body is not JSON"),
                    **_AUTH_ERRORS,
                    "408": _problem("the body did not arrive in time"),
                    "413": _problem("the body is over the cap"),
                    "415": _problem("the body is not application/json"),
                    "422": _problem("a request the service refuses: unknown or missing "
                                    "fields, bad limits, an unknown runtime..."),
                    "429": {**_problem("the queue is full: retry after Retry-After seconds"),
                            "headers": {"Retry-After": {"schema": {"type": "integer"}}}},
                    "503": _problem("the service cannot run it now: draining, no runner, "
                                    "no slot within the queue wait"),
                },
            }},
            "/v1/runtimes": {"get": {
                "operationId": "listRuntimes",
                "summary": "The runtimes the daemon's runners serve, with their versions",
                "responses": {"200": {"description": "the runtimes",
                                      "content": json_of("#/components/schemas/Runtimes")},
                              **_AUTH_ERRORS},
            }},
            **session_paths,
            "/v1/openapi.json": {"get": {
                "operationId": "openapi", "summary": "This document", "security": [],
                "responses": {"200": {"description": "the OpenAPI document",
                                      "content": {"application/json": {}}}},
            }},
        },
    }
