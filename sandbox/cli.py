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
from sandbox.client import Client
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
    ex.add_argument("--policy", choices=("default", "restricted"), default="default",
                    help="python: restricted compiles the snippet with RestrictedPython")
    ex.add_argument("--import", action="append", dest="imports", metavar="MODULE",
                    help="python: the modules the snippet may import (within the allow-lists)")
    _import_flags(ex)
    ex.add_argument("file", nargs="?", default="-", help="file with the code, or - for stdin")
    _connection_flags(ex, "a `sandbox serve` daemon to use (default: an embedded broker)")

    sv = sub.add_parser("serve", help="run a broker and local runners as a daemon")
    sv.add_argument("--config", metavar="TOML", help="settings file (flags and SANDBOX_* win)")
    sv.add_argument("--bind", action="append", metavar="ENDPOINT", help="ipc:// or tcp://")
    sv.add_argument("--http", metavar="HOST:PORT", help='/healthz and /metrics ("" for none)')
    sv.add_argument("--runners", type=int, help="local runner processes")
    sv.add_argument("--slots", type=int, help="tasks each runner runs at once")
    sv.add_argument("--runtimes", help="comma-separated, e.g. python,javascript")
    sv.add_argument("--group", action="append", dest="groups", metavar="LABEL")
    sv.add_argument("--queue-max", type=int, dest="queue_max")
    sv.add_argument("--queue-timeout", type=float, dest="queue_timeout_s", metavar="SECONDS")
    sv.add_argument("--max-in-flight", type=int, dest="max_in_flight")
    sv.add_argument("--lane", action="append", dest="lanes", metavar="NAME=CAP")
    sv.add_argument("--heartbeat", type=float, dest="heartbeat_s", metavar="SECONDS")
    sv.add_argument("--liveness", type=int)
    sv.add_argument("--grace", type=float, dest="grace_s", metavar="SECONDS")
    sv.add_argument("--curve-dir", dest="curve_dir", metavar="DIR", help="from `sandbox keys`")
    sv.add_argument("--insecure", action="store_true", default=None,
                    help="allow plain TCP without CURVE")
    _import_flags(sv)
    sv.add_argument("--package", action="append", dest="packages", metavar="SPEC",
                    help="a third-party package for snippets, e.g. 'pandas==2.*' (installed "
                         "at start into --packages-dir when the list changed)")

    rn = sub.add_parser("runner", help="run tasks for a broker")
    rn.add_argument("--slots", type=int, default=4)
    rn.add_argument("--runtimes", default="python,javascript")
    rn.add_argument("--group", action="append", dest="groups", default=[], metavar="LABEL")
    rn.add_argument("--name", default="")
    rn.add_argument("--heartbeat", type=float, default=1.0, metavar="SECONDS")
    rn.add_argument("--liveness", type=int, default=3)
    rn.add_argument("--lifeline", type=int, default=None, metavar="FD", help=argparse.SUPPRESS)
    _import_flags(rn)
    _connection_flags(rn, "the broker's endpoint", required=True)

    bn = sub.add_parser("bench", help="benchmark the service beside its baselines",
                        add_help=False)
    bn.add_argument("args", nargs=argparse.REMAINDER, help="see `sandbox bench --help`")

    pk = sub.add_parser("packages", help="the third-party environment python snippets see")
    pk.add_argument("action", choices=("install", "list"))
    pk.add_argument("specs", nargs="*", metavar="SPEC", help="e.g. 'pandas==2.*' requests")
    pk.add_argument("--dir", metavar="DIR", help="default: ~/.local/share/snippet-sandbox/packages")

    from sandbox.n8n.cli import add_parser as add_n8n_runner

    add_n8n_runner(sub)
    ks = sub.add_parser("keys", help="make CURVE key pairs for a tcp:// daemon")
    ks.add_argument("dir", help="directory to write server and client keys into")
    ks.add_argument("--client", action="append", default=[], metavar="NAME",
                    help="client key pairs to make (default: client)")
    return parser


def _import_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stdlib-allow", dest="stdlib_allow", metavar="MODULES",
                   help="standard-library modules snippets may import, comma-separated: names "
                        "REPLACE the curated safe default list, +name ADDS to it (+sys,+os); "
                        '"*" for all')
    p.add_argument("--external-allow", dest="external_allow", metavar="MODULES",
                   help='third-party modules snippets may import, comma-separated, "*" for all '
                        "(none by default)")
    p.add_argument("--packages-dir", dest="packages_dir", metavar="DIR",
                   help="the third-party environment (`sandbox packages install`) to mount")
    p.add_argument("--preload", metavar="MODULES",
                   help="modules the python zygote imports ahead of time, comma-separated")


def _pool_config(args: argparse.Namespace, size: int) -> PoolConfig:
    return PoolConfig(size=size, stdlib_allow=_split(args.stdlib_allow),
                      external_allow=_split(args.external_allow),
                      packages_dir=args.packages_dir or None, preload=_split(args.preload))


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(x.strip() for x in value.split(",") if x.strip()) if value else ()


def _connection_flags(p: argparse.ArgumentParser, what: str, required: bool = False) -> None:
    p.add_argument("--connect", metavar="ENDPOINT", required=required, help=what)
    p.add_argument("--curve-dir", dest="curve_dir", metavar="DIR",
                   help="CURVE keys from `sandbox keys` (needed for tcp://)")
    p.add_argument("--insecure", action="store_true", help="allow plain TCP without CURVE")


def _curve_client(args: argparse.Namespace) -> Any:
    if not args.curve_dir:
        if args.connect and args.connect.startswith("tcp://") and not args.insecure:
            raise UsageError("tcp:// needs --curve-dir (see `sandbox keys`) or --insecure")
        return None
    import zmq.auth

    from sandbox.runner import CurveClient

    try:
        public, secret = zmq.auth.load_certificate(f"{args.curve_dir}/client.key_secret")
        server, _ = zmq.auth.load_certificate(f"{args.curve_dir}/server.key")
        if secret is None:
            raise ValueError("client.key_secret holds no secret key")
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot load CURVE keys from {args.curve_dir}: {exc}") from exc
    return CurveClient(public, secret, server)


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
    curve = _curve_client(args)
    options: dict[str, Any] = dict(timeout_s=args.timeout, memory_mb=args.memory)
    if runtime == "python":
        options.update(policy=args.policy, imports=args.imports)
    elif args.policy != "default" or args.imports:
        raise UsageError("--policy and --import apply to python")
    if args.connect:
        if args.stdlib_allow or args.external_allow or args.packages_dir or args.preload:
            raise UsageError("--stdlib-allow/--external-allow/--packages-dir/--preload are the "
                             "daemon's settings: pass them to `sandbox serve`")
        with Client(args.connect, curve=curve, insecure=args.insecure) as client:
            result = client.run(runtime, code, data, **options)
    else:
        try:
            pool = _pool_config(args, size=1)
        except ConfigError as exc:
            raise UsageError(str(exc)) from exc
        with Client(pool=pool, runtimes=(runtime,)) as client:
            result = client.run(runtime, code, data, **options)
    if args.json:
        print(json.dumps(result_json(result), ensure_ascii=False, allow_nan=False))
    else:
        _print_human(result)
    return EXIT_OK if result.ok else EXIT_STATUS


def _serve(args: argparse.Namespace) -> int:
    from sandbox.allocator import keep_large_blocks
    from sandbox.config import ServiceConfig
    from sandbox.daemon import serve

    keep_large_blocks()
    flags = {k: getattr(args, k) for k in (
        "http", "runners", "slots", "queue_max", "queue_timeout_s", "max_in_flight",
        "heartbeat_s", "liveness", "grace_s", "curve_dir", "insecure")}
    flags["bind"] = tuple(args.bind) if args.bind else None
    flags["groups"] = tuple(args.groups) if args.groups else None
    flags["lanes"] = tuple(args.lanes) if args.lanes else None
    flags["runtimes"] = args.runtimes
    flags["stdlib_allow"] = _split(args.stdlib_allow) or None
    flags["external_allow"] = _split(args.external_allow) or None
    flags["packages_dir"] = args.packages_dir
    flags["preload"] = _split(args.preload) or None
    flags["packages"] = tuple(args.packages) if args.packages else None
    try:
        config = ServiceConfig.load(args.config, flags=flags)
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc
    return serve(config)


def _runner(args: argparse.Namespace) -> int:
    import signal
    import threading

    from sandbox.allocator import keep_large_blocks
    from sandbox.runner import Runner, RunnerConfig

    keep_large_blocks()
    runtimes = tuple(canonical_runtime(r) or r for r in args.runtimes.split(",") if r)
    unknown = [r for r in runtimes if r not in RUNTIME_ALIASES.values()]
    if unknown:
        raise UsageError(f"unknown runtime(s): {', '.join(unknown)}")
    if args.slots < 1:
        raise UsageError("--slots must be at least 1")
    try:
        pool = _pool_config(args, size=args.slots)
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc
    config = RunnerConfig(args.connect, runtimes=runtimes, groups=tuple(args.groups),
                          slots=args.slots, name=args.name, heartbeat_s=args.heartbeat,
                          liveness=args.liveness, curve=_curve_client(args), pool=pool,
                          lifeline_fd=args.lifeline)
    stop = threading.Event()
    if args.lifeline is not None:
        # Started by `sandbox serve`: a SIGTERM or Ctrl-C sent to the whole process group is
        # the daemon's to handle (it drains first); this runner stops when its lifeline closes.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    runner = Runner(config)
    if args.lifeline is None:
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.set_wakeup_fd(runner.loop.wake_fd)  # a signal wakes the loop's poll at once
    try:
        runner.serve(stop)
    finally:
        runner.close()
    return 0


def _packages(args: argparse.Namespace) -> int:
    from sandbox import packages

    directory = args.dir or packages.default_dir()
    if args.action == "list":
        specs = packages.installed_specs(directory)
        if specs is None:
            print(f"no environment in {directory}", file=sys.stderr)
            return EXIT_STATUS
        print(f"{directory}: " + (" ".join(specs) or "(empty)"))
        return EXIT_OK
    if not args.specs:
        raise UsageError("packages install: name at least one package")
    try:
        packages.install(args.specs, directory)
    except ConfigError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return EXIT_STATUS
    print(f"installed into {directory}; serve with --packages-dir {directory} and allow "
          f"modules with --external-allow")
    return EXIT_OK


def _keys(args: argparse.Namespace) -> int:
    import os
    import shutil

    import zmq.auth

    os.makedirs(args.dir, mode=0o700, exist_ok=True)
    authorized = os.path.join(args.dir, "authorized")
    os.makedirs(authorized, mode=0o700, exist_ok=True)
    zmq.auth.create_certificates(args.dir, "server")
    for name in args.client or ["client"]:
        public, _ = zmq.auth.create_certificates(args.dir, name)
        shutil.copy(public, authorized)
    print(f"keys written to {args.dir}: server.key(_secret) for `sandbox serve --curve-dir`, "
          f"client key pairs for --curve-dir on clients and runners; public keys of allowed "
          f"peers live in {authorized}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # the harness parses its own flags
        from benchmarks.__main__ import main as bench

        return bench(argv[1:])
    try:
        args = _parser().parse_args(argv)
        if args.command == "exec":
            return _exec(args)
        if args.command == "serve":
            return _serve(args)
        if args.command == "runner":
            return _runner(args)
        if args.command == "keys":
            return _keys(args)
        if args.command == "n8n-runner":
            from sandbox.n8n.cli import run as n8n_runner

            return n8n_runner(args)
        if args.command == "packages":
            return _packages(args)
        raise UsageError(f"unknown command {args.command!r}")
    except UsageError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SandboxError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return EXIT_STATUS


if __name__ == "__main__":
    sys.exit(main())
