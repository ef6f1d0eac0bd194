"""The ``sandbox`` command.

``sandbox exec --runtime python [--timeout SECONDS] [--memory MB] [--data JSON] [--json] [FILE|-]``

Exit codes: 0 when the status is ok, 1 for any other finished status, 2 for a usage error
(unknown runtime, bad JSON in --data, missing file, bad limit), with one line on stderr.
With ``--json`` it prints exactly one JSON object:
``{"status", "result", "stdout", "error": {"type", "message", "traceback"} | null,
"duration_ms", "message", "truncated", "exec_ms"}``; bytes appear as ``{"$bytes": base64}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, NoReturn

from sandbox.config import RUNTIME_ALIASES, Limits, PoolConfig, canonical_runtime
from sandbox.errors import ConfigError, SandboxError
from sandbox.jsonview import from_json_data, to_jsonable
from sandbox.local import Sandbox
from sandbox.result import Result

EXIT_OK, EXIT_STATUS, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2: other tools parse this
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sandbox", description="Run untrusted snippets in a sandbox.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    ex = sub.add_parser("exec", help="run one snippet and print its result")
    ex.add_argument("--runtime", "-r", required=True, help="python or javascript (js)")
    ex.add_argument("--timeout", type=float, default=None, metavar="SECONDS")
    ex.add_argument("--memory", type=int, default=None, metavar="MB")
    ex.add_argument("--data", default=None, metavar="JSON", help="input value, bound to `data`")
    ex.add_argument("--json", action="store_true", help="print one JSON object")
    ex.add_argument("file", nargs="?", default="-", help="file with the code, or - for stdin")
    return parser


def result_json(result: Result) -> dict[str, Any]:
    return {
        "status": result.status.value,
        "result": to_jsonable(result.value),
        "stdout": result.stdout,
        "error": (
            {"type": result.error.type, "message": result.error.message,
             "traceback": result.error.traceback}
            if result.error else None
        ),
        "duration_ms": round(result.duration_ms, 3),
        "message": result.message,
        "truncated": result.truncated,
        "exec_ms": round(result.exec_ms, 3),
    }


def _print_human(result: Result) -> None:
    if result.stdout:
        sys.stdout.write(result.stdout if result.stdout.endswith("\n") else result.stdout + "\n")
        if result.truncated:
            sys.stdout.write("[output truncated]\n")
    if result.ok:
        if result.value is not None:
            print(json.dumps(to_jsonable(result.value), indent=2, ensure_ascii=False))
        return
    if result.error and result.error.traceback:
        sys.stderr.write(result.error.traceback)
    print(f"{result.status.value}: {result.message}", file=sys.stderr)


def _exec(args: argparse.Namespace) -> int:
    runtime = canonical_runtime(args.runtime)
    if runtime is None:
        known = ", ".join(sorted(RUNTIME_ALIASES))
        raise UsageError(f"unknown runtime {args.runtime!r} (known: {known})")
    try:
        data = from_json_data(args.data) if args.data is not None else None
    except ValueError as exc:
        raise UsageError(f"--data: {exc}") from exc
    try:
        Limits().replace(timeout_s=args.timeout, memory_mb=args.memory)
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc
    if args.file == "-":
        code = sys.stdin.read()
    else:
        try:
            with open(args.file, encoding="utf-8") as f:
                code = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {args.file}: {exc}") from exc
    with Sandbox(PoolConfig(size=1), runtimes=(runtime,)) as sb:
        result = sb.run(runtime, code, data, timeout_s=args.timeout, memory_mb=args.memory)
    if args.json:
        print(json.dumps(result_json(result), ensure_ascii=False, allow_nan=False))
    else:
        _print_human(result)
    return EXIT_OK if result.ok else EXIT_STATUS


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        if args.command == "exec":
            return _exec(args)
        raise UsageError(f"unknown command {args.command!r}")
    except UsageError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SandboxError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return EXIT_STATUS


if __name__ == "__main__":
    sys.exit(main())
