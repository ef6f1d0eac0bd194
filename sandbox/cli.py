"""The ``sandbox`` command.

``sandbox exec --runtime python [--timeout SECONDS] [--memory MB] [--data JSON] [--json] [FILE|-]``

``sandbox runtimes`` says which runtimes work on this host and why the others do not (so does
``sandbox exec`` when its runtime cannot start).

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

from sandbox.config import RUNTIME_ALIASES, Limits, PoolConfig, PyodideConfig, canonical_runtime
from sandbox import registry
from sandbox.errors import ConfigError, JailError, SandboxError
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
    ex.add_argument("--runtime", "-r", required=True,
                    help="python, javascript (js) or pyodide (`sandbox runtimes` says which "
                         "work on this host)")
    ex.add_argument("--timeout", type=float, default=None, metavar="SECONDS")
    ex.add_argument("--memory", type=int, default=None, metavar="MB")
    ex.add_argument("--data", default=None, metavar="JSON", help="input value, bound to `data`")
    ex.add_argument("--json", action="store_true", help="print one JSON object")
    ex.add_argument("--policy", choices=("default", "restricted"), default="default",
                    help="python: restricted compiles the snippet with RestrictedPython")
    ex.add_argument("--import", action="append", dest="imports", metavar="MODULE",
                    help="python, pyodide: the modules the snippet may import (within the "
                         "allow-lists)")
    _import_flags(ex)
    ex.add_argument("file", nargs="?", default="-", help="file with the code, or - for stdin")
    _connection_flags(ex, "a `sandbox serve` daemon to use (default: an embedded broker)",
                      key="client")

    sv = sub.add_parser("serve", help="run a broker and local runners as a daemon")
    sv.add_argument("--config", metavar="TOML", help="settings file (flags and SANDBOX_* win)")
    sv.add_argument("--bind", action="append", metavar="ENDPOINT",
                    help="where clients connect: ipc:// or tcp://")
    sv.add_argument("--runner-bind", action="append", dest="runner_bind", metavar="ENDPOINT",
                    help="where runners connect (default: a private ipc:// socket for the "
                         "local runners); tcp:// for remote runners, with runner keys")
    sv.add_argument("--http", metavar="HOST:PORT", help='/healthz and /metrics ("" for none)')
    sv.add_argument("--runners", type=int, help="local runner processes")
    sv.add_argument("--slots", type=int, help="tasks each runner runs at once")
    sv.add_argument("--runtimes", help="comma-separated, e.g. python,javascript")
    sv.add_argument("--group", action="append", dest="groups", metavar="LABEL")
    sv.add_argument("--queue-max", type=int, dest="queue_max")
    sv.add_argument("--queue-timeout", type=float, dest="queue_timeout_s", metavar="SECONDS")
    sv.add_argument("--max-in-flight", type=int, dest="max_in_flight")
    sv.add_argument("--max-per-client", type=int, dest="max_per_client",
                    help="tasks one client may hold: queued, running or unread")
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
    _connection_flags(rn, "the broker's runner endpoint", required=True, key="runner")

    bn = sub.add_parser("bench", help="benchmark the service beside its baselines",
                        add_help=False)
    bn.add_argument("args", nargs=argparse.REMAINDER, help="see `sandbox bench --help`")

    pk = sub.add_parser("packages", help="the third-party environment python snippets see")
    pk.add_argument("action", choices=("install", "list"))
    pk.add_argument("specs", nargs="*", metavar="SPEC", help="e.g. 'pandas==2.*' requests")
    pk.add_argument("--dir", metavar="DIR", help="default: ~/.local/share/snippet-sandbox/packages")
    pk.add_argument("--runtime", choices=("python", "pyodide"), default="python",
                    help="pyodide: pure-Python wheels, py-compiled, with a Pyodide lock file")

    po = sub.add_parser("pyodide", help="the pyodide runtime's distribution and build tools")
    po.add_argument("action", choices=("install",), help="install them once (cached)")

    rt = sub.add_parser("runtimes", help="which runtimes work on this host, and why not")
    rt.add_argument("--pyodide-no-namespaces", action="store_true",
                    help="as if pyodide were allowed to run without namespaces")

    from sandbox.n8n.cli import add_parser as add_n8n_runner

    add_n8n_runner(sub)
    ks = sub.add_parser("keys", help="make CURVE key pairs for a tcp:// daemon")
    ks.add_argument("dir", help="a private directory (mode 0700) to write the keys into")
    ks.add_argument("--client", action="append", default=[], metavar="NAME",
                    help="client key pairs to make (default, when neither --client nor "
                         "--runner is given: client and runner)")
    ks.add_argument("--runner", action="append", default=[], metavar="NAME",
                    help="runner key pairs to make")
    ks.add_argument("--force", action="store_true",
                    help="replace key pairs that exist (every peer holding them is locked out)")
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
    p.add_argument("--pyodide-packages-dir", dest="pyodide_packages_dir", metavar="DIR",
                   help="pyodide: the environment of `sandbox packages install --runtime "
                        "pyodide` its workers load")
    p.add_argument("--pyodide-no-namespaces", dest="pyodide_no_namespaces", action="store_true",
                   default=None,
                   help="pyodide: run without any namespace on a host that denies them, giving "
                        "up the jail's own file system, network and process namespaces (the "
                        "WebAssembly sandbox, seccomp, rlimits and cgroups remain)")


def _pool_config(args: argparse.Namespace, size: int) -> PoolConfig:
    return PoolConfig(size=size, stdlib_allow=_split(args.stdlib_allow),
                      external_allow=_split(args.external_allow),
                      packages_dir=args.packages_dir or None, preload=_split(args.preload),
                      pyodide=PyodideConfig(packages_dir=args.pyodide_packages_dir or None,
                                            no_namespaces=bool(args.pyodide_no_namespaces)))


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(x.strip() for x in value.split(",") if x.strip()) if value else ()


def _connection_flags(p: argparse.ArgumentParser, what: str, *, key: str,
                      required: bool = False) -> None:
    p.add_argument("--connect", metavar="ENDPOINT", required=required, help=what)
    p.add_argument("--curve-dir", dest="curve_dir", metavar="DIR",
                   help="CURVE keys from `sandbox keys` (needed for tcp://)")
    p.add_argument("--key", default=key, metavar="NAME",
                   help=f"which key pair in --curve-dir: NAME.key_secret (default: {key})")
    p.add_argument("--insecure", action="store_true", help="allow plain TCP without CURVE")


def _curve_client(args: argparse.Namespace) -> Any:
    if not args.curve_dir:
        if args.connect and args.connect.startswith("tcp://") and not args.insecure:
            raise UsageError("tcp:// needs --curve-dir (see `sandbox keys`) or --insecure")
        return None
    from sandbox.link import CurveClient

    try:
        return CurveClient.load(args.curve_dir, args.key)
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc


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
    facts = registry.RUNTIMES[runtime]
    if args.policy not in facts.policies:
        raise UsageError(f"--policy {args.policy} applies to python, not {runtime}")
    if args.imports and not facts.language_layer:
        raise UsageError(f"--import applies to python and pyodide, not {runtime}")
    if facts.language_layer:
        options.update(imports=args.imports)
    if args.policy != "default":
        options.update(policy=args.policy)
    if args.connect:
        if (args.stdlib_allow or args.external_allow or args.packages_dir or args.preload
                or args.pyodide_packages_dir or args.pyodide_no_namespaces):
            raise UsageError("--stdlib-allow/--external-allow/--packages-dir/--preload/--pyodide-* "
                             "are the daemon's settings: pass them to `sandbox serve`")
        with Client(args.connect, curve=curve, insecure=args.insecure) as client:
            result = client.run(runtime, code, data, **options)
    else:
        try:
            pool = _pool_config(args, size=1)
        except ConfigError as exc:
            raise UsageError(str(exc)) from exc
        try:
            with Client(pool=pool, runtimes=(runtime,)) as client:
                result = client.run(runtime, code, data, **options)
        except JailError as exc:
            # which runtimes this host can run, and why the others not, beside the reason
            raise JailError(f"{exc}\n{_host_report(pool)}") from exc
    if args.json:
        print(json.dumps(result_json(result), ensure_ascii=False, allow_nan=False))
    else:
        _print_human(result)
    return EXIT_OK if result.ok else EXIT_STATUS


def _host_report(pool: PoolConfig) -> str:
    from sandbox import hostcheck

    return "on this host:\n" + "\n".join("  " + v.line() for v in hostcheck.runtimes(pool))


def _runtimes(args: argparse.Namespace) -> int:
    from sandbox import hostcheck

    verdicts = hostcheck.runtimes(PoolConfig(
        pyodide=PyodideConfig(no_namespaces=args.pyodide_no_namespaces)))
    for verdict in verdicts:
        print(verdict.line())
    return EXIT_OK if all(v.works for v in verdicts) else EXIT_STATUS


def _serve(args: argparse.Namespace) -> int:
    from sandbox.allocator import keep_large_blocks
    from sandbox.config import ServiceConfig
    from sandbox.daemon import serve

    keep_large_blocks()
    flags = {k: getattr(args, k) for k in (
        "http", "runners", "slots", "queue_max", "queue_timeout_s", "max_in_flight",
        "max_per_client", "heartbeat_s", "liveness", "grace_s", "curve_dir", "insecure")}
    flags["bind"] = tuple(args.bind) if args.bind else None
    flags["runner_bind"] = tuple(args.runner_bind) if args.runner_bind else None
    flags["groups"] = tuple(args.groups) if args.groups else None
    flags["lanes"] = tuple(args.lanes) if args.lanes else None
    flags["runtimes"] = args.runtimes
    flags["stdlib_allow"] = _split(args.stdlib_allow) or None
    flags["external_allow"] = _split(args.external_allow) or None
    flags["packages_dir"] = args.packages_dir
    flags["preload"] = _split(args.preload) or None
    flags["packages"] = tuple(args.packages) if args.packages else None
    flags["pyodide_packages_dir"] = args.pyodide_packages_dir
    flags["pyodide_no_namespaces"] = args.pyodide_no_namespaces
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

    if args.runtime == "pyodide":
        return _pyodide_packages(args)
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


def _pyodide_packages(args: argparse.Namespace) -> int:
    from sandbox import pyodide_packages

    directory = args.dir or pyodide_packages.default_dir()
    if args.action == "list":
        manifest = pyodide_packages.installed(directory)
        if manifest is None:
            print(f"no pyodide environment in {directory}", file=sys.stderr)
            return EXIT_STATUS
        print(f"{directory}: " + " ".join(manifest["packages"]))
        return EXIT_OK
    if not args.specs:
        raise UsageError("packages install: name at least one package")
    try:
        manifest = pyodide_packages.install(args.specs, directory)
    except SandboxError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return EXIT_STATUS
    print(f"installed {' '.join(manifest['packages'])} into {directory}; workers load it with "
          f"--pyodide-packages-dir {directory} and snippets import it with --external-allow")
    return EXIT_OK


def _keys(args: argparse.Namespace) -> int:
    """Key pairs for a tcp:// daemon: ``server``, clients (their public keys in
    ``authorized/``) and runners (in ``runners/``). Secrets are 0600 in a 0700 directory;
    an existing pair is replaced only with --force (that locks out every peer holding it)."""
    import os
    import re
    import shutil
    import stat

    import zmq.auth

    directory = args.dir
    clients = args.client or ([] if args.runner else ["client"])
    runners = args.runner or ([] if args.client else ["runner"])
    names = clients + runners
    for name in names:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name) or name == "server":
            raise UsageError(f"key name {name!r}: letters, digits, '_', '.', '-', not 'server'")
    if len(set(names)) != len(names):
        raise UsageError("each key name may be given once")
    if os.path.lexists(directory):
        if not os.path.isdir(directory) or os.path.islink(directory):
            raise UsageError(f"{directory} exists and is not a directory")
        mode = stat.S_IMODE(os.stat(directory).st_mode)
        if mode & 0o077:
            raise UsageError(f"{directory} is open to other users (mode {mode:04o}): secret "
                             f"keys need a private directory (chmod 700 {directory})")
    pairs = [("server", None)] + [(n, "authorized") for n in clients] + [(n, "runners")
                                                                          for n in runners]
    if not args.force:
        # the server pair is kept when it exists (adding peers must not lock out the others)
        pairs = [pair for pair in pairs if pair[0] != "server"
                 or not os.path.exists(os.path.join(directory, "server.key_secret"))]
        taken = [os.path.join(directory, f"{n}.key_secret") for n, _ in pairs
                 if os.path.lexists(os.path.join(directory, f"{n}.key_secret"))
                 or os.path.lexists(os.path.join(directory, f"{n}.key"))]
        if taken:
            raise UsageError(f"would replace {', '.join(taken)}: every peer holding those keys "
                             "would be locked out (pass --force to replace them)")
    old = os.umask(0o077)  # nothing is readable by others, not even for an instant
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        for sub in ("authorized", "runners"):
            os.makedirs(os.path.join(directory, sub), mode=0o700, exist_ok=True)
        for name, allowed_in in pairs:
            public, secret = zmq.auth.create_certificates(directory, name)
            os.chmod(secret, 0o600)
            os.chmod(public, 0o644)
            if allowed_in:
                shutil.copyfile(public, os.path.join(directory, allowed_in, f"{name}.key"))
    finally:
        os.umask(old)
    made = ", ".join(n for n, _ in pairs)
    print(f"keys written to {directory}: {made}. `sandbox serve --curve-dir {directory}` "
          f"lets in the clients in {directory}/authorized and the runners in "
          f"{directory}/runners; peers pick a pair with --curve-dir {directory} --key NAME "
          "(exec: client, runner: runner by default)")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # the harness parses its own flags
        from benchmarks.__main__ import main as bench

        return bench(argv[1:])
    try:
        args, extra = _parser().parse_known_args(argv)
        if extra and args.command == "packages" and not any(x.startswith("-") for x in extra):
            # `packages install --runtime pyodide six`: names after an option are names too
            args.specs = [*args.specs, *extra]
        elif extra:
            raise UsageError(f"unrecognized arguments: {' '.join(extra)}")
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
        if args.command == "pyodide":
            from sandbox import pyodide_dist

            return pyodide_dist.main([])
        if args.command == "runtimes":
            return _runtimes(args)
        raise UsageError(f"unknown command {args.command!r}")
    except UsageError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SandboxError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return EXIT_STATUS


if __name__ == "__main__":
    sys.exit(main())
