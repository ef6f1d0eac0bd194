"""The ``sandbox`` command.

``sandbox exec --runtime python [--timeout SECONDS] [--memory MB] [--stdout-bytes N]
[--result-bytes N] [--data JSON | --data @FILE | --data-file FILE] [--json]
[--version PREFIX] [--isolation process|worker] [--reuse-key KEY] [--connect [ENDPOINT]]
[--session ID [--close-session]] [--stdin FILE|-] [--separate-stderr] [--stream]
[--file NAME=PATH]... [--return-files DIR] [FILE|-]``

``sandbox runtimes`` says which runtimes work on this host and why the others do not (so does
``sandbox exec`` when its runtime cannot start).

``serve``, ``runner`` and ``exec`` take the settings of the schema (``sandbox.config``): a
flag each, named after the setting, beside ``SANDBOX_*`` and ``--config FILE``.

Exit codes: 0 when the status is ok, 1 for any other finished status, 2 for a usage error
(unknown runtime, bad JSON in --data, missing file, bad limit), with one line on stderr, 130
when interrupted (Ctrl-C: the task is cancelled). With ``--json`` it prints exactly one JSON
object, a usage error and an interruption included (status ``rejected``, ``crashed``):
``{"status", "result", "stdout", "error": {"type", "message", "traceback"} | null,
"duration_ms", "message", "truncated", "exec_ms", "stderr", "cpu_ms", "peak_memory_kb"}``;
bytes appear as ``{"$bytes": base64}``. With ``--stream --json``, one ``{"stream", "text"}``
line per piece of output as it comes precedes that object (JSON lines).
In text mode a string result prints as it is, any other value as JSON; the snippet's stderr
(``--separate-stderr``) goes to stderr.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from broker.protocol import MAX_CODE_BYTES, MAX_DATA_BYTES, MAX_FILES_BYTES, MAX_STDIN_BYTES
from sandbox.config import (SETTINGS, Limits, PoolConfig, PyodideConfig,
                            ServiceConfig, Setting, amount, check_endpoint,
                            default_endpoint, settings_for, unknown_env)
from sandbox import registry
from sandbox.errors import ConfigError, JailError, RequestError, SandboxError, SessionError
from sandbox.jsonview import from_json_data, to_jsonable
from sandbox.client import Client, ClientSession
from sandbox.request import Options, Request, request
from sandbox.result import OutputChunk, Result, Status

EXIT_OK, EXIT_STATUS, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
INTERRUPTED = "interrupted; the task was cancelled"
# the flags of the per-task limits, as a message about a limit names them
LIMIT_FLAGS = {"timeout_s": "--timeout", "memory_mb": "--memory",
               "stdout_bytes": "--stdout-bytes", "result_bytes": "--result-bytes"}


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2: other tools parse this
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sandbox", description="Run untrusted snippets in a sandbox.")
    parser.add_argument("--version", action=_VersionAction, nargs=0,
                        help="the program's version and its runtimes' engines")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _exec_parser(sub)
    sv = sub.add_parser("serve", help="run a broker and local runners as a daemon")
    _setting_flags(sv, "serve")

    rn = sub.add_parser("runner", help="run tasks for a broker")
    rn.add_argument("--connect", metavar="ENDPOINT", required=True,
                    help="the broker's runner endpoint")
    rn.add_argument("--key", default="runner", metavar="NAME",
                    help="which key pair in --curve-dir: NAME.key_secret (default: runner)")
    rn.add_argument("--name", default="")
    rn.add_argument("--lifeline", type=int, default=None, metavar="FD", help=argparse.SUPPRESS)
    # from `sandbox serve`: its local runners' settings, as the schema holds them
    rn.add_argument("--settings", default=None, help=argparse.SUPPRESS)
    _setting_flags(rn, "runner")

    _packages_parser(sub)

    po = sub.add_parser("pyodide", help="the pyodide runtime's distribution and build tools")
    actions = po.add_subparsers(dest="action", required=True, parser_class=_Parser)
    actions.add_parser("install", help="install them once (cached)",
                       description="Install the pinned Pyodide distribution and its build "
                                   "tools into the cache (once; later calls check them).")

    rt = sub.add_parser("runtimes", help="which runtimes work on this host, and why not")
    rt.add_argument(SETTINGS["pyodide_no_namespaces"].flag, dest="pyodide_no_namespaces",
                    action="store_true", help="as if pyodide were allowed to run without "
                                              "namespaces")

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


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("snippet-sandbox")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "unknown"


def _engines() -> str:
    """Each runtime's version as a runner advertises it (the registry's)."""
    return ", ".join(f"{r.name} {r.version}" for r in registry.RUNTIMES.values())


class _VersionAction(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        print(f"sandbox {_version()} ({_engines()})")
        parser.exit()


def _exec_parser(sub: Any) -> None:
    ex = sub.add_parser("exec", help="run one snippet and print its result")
    ex.add_argument("--runtime", "-r", required=True,
                    help="python, javascript (js) or pyodide (`sandbox runtimes` says which "
                         "work on this host)")
    ex.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                    help=f"wall clock, killed past it (default "
                         f"{amount(Limits().timeout_s, 'timeout_s')})")
    ex.add_argument("--memory", type=int, default=None, metavar="MB",
                    help=f"the snippet's memory budget (default "
                         f"{amount(Limits().memory_mb, 'memory_mb')})")
    ex.add_argument("--stdout-bytes", type=int, default=None, metavar="BYTES",
                    help=f"captured output kept (default "
                         f"{amount(Limits().stdout_bytes, 'stdout_bytes')})")
    ex.add_argument("--result-bytes", type=int, default=None, metavar="BYTES",
                    help=f"largest encoded result (default "
                         f"{amount(Limits().result_bytes, 'result_bytes')})")
    ex.add_argument("--data", default=None, metavar="JSON",
                    help="input value, bound to `data` (@FILE: read it from FILE)")
    ex.add_argument("--data-file", default=None, metavar="FILE",
                    help="input value as JSON in FILE (at most "
                         f"{amount(MAX_DATA_BYTES, 'data_bytes')} encoded)")
    ex.add_argument("--json", action="store_true", help="print one JSON object")
    ex.add_argument("--policy", choices=("default", "restricted"), default="default",
                    help="python: restricted compiles the snippet with RestrictedPython")
    ex.add_argument("--import", action="append", dest="imports", metavar="MODULE",
                    help="python, pyodide: the modules the snippet may import (within the "
                         "allow-lists)")
    ex.add_argument("--version", default="", metavar="PREFIX", dest="runtime_version",
                    help="the runtime version the runner must have, e.g. 3.11")
    ex.add_argument("--isolation", choices=("process", "worker"), default=None,
                    help="process (default): a fresh process; worker: a warm worker serving "
                         "--reuse-key's tasks only (see the README's worker mode)")
    ex.add_argument("--reuse-key", default=None, metavar="KEY",
                    help="worker mode: the tenant or lane whose workers may run this task")
    ex.add_argument("--session", default=None, metavar="ID",
                    help="with --connect: run the code in the caller's session ID (opened when "
                         "not open; its names live on to the next call); see the README's "
                         "sessions")
    ex.add_argument("--close-session", action="store_true",
                    help="with --session: close that session instead of running code")
    ex.add_argument("--stdin", default=None, metavar="FILE|-", dest="stdin_from",
                    help="python: the snippet's standard input, from FILE (-: this command's "
                         "stdin, which then cannot carry the code too: give the code as FILE)")
    ex.add_argument("--separate-stderr", action="store_true",
                    help="keep the snippet's stderr apart from its stdout (printed on stderr; "
                         "`stderr` in --json)")
    ex.add_argument("--stream", action="store_true",
                    help="print the output as it comes (with --json: one JSON line per chunk, "
                         '{"stream", "text"}, then the result\'s object)')
    ex.add_argument("--file", action="append", dest="put_files", metavar="NAME=PATH",
                    help="python, with --files-mb: PATH's content goes into the task's "
                         "directory as NAME (repeatable)")
    ex.add_argument("--return-files", default=None, metavar="DIR",
                    help="python, with --files-mb: write the files the task left in its "
                         "directory into DIR (a name that would escape DIR is refused)")
    ex.add_argument("file", nargs="?", default="-",
                    help="file with the code, or - for stdin (at most "
                         f"{amount(MAX_CODE_BYTES, 'code_bytes')})")
    ex.add_argument("--connect", metavar="ENDPOINT", nargs="?", const=default_endpoint(),
                    help="use a `sandbox serve` daemon (default: an embedded broker); with "
                         f"no ENDPOINT (or `default`), the default one: {default_endpoint()}")
    ex.add_argument("--key", default="client", metavar="NAME",
                    help="which key pair in --curve-dir: NAME.key_secret (default: client)")
    _setting_flags(ex, "exec")


def _packages_parser(sub: Any) -> None:
    from sandbox.jail import packages

    def common(p: argparse.ArgumentParser, given_before: bool) -> None:
        # given before the action (``packages --runtime pyodide install``) or after it: an
        # action's own copy has no default, so it never undoes the one given before
        default: Any = argparse.SUPPRESS if given_before else None
        p.add_argument("--packages-dir", "--dir", dest="packages_dir", metavar="DIR",
                       default=default,
                       help=f"the environment (default here: {packages.default_dir()}) "
                            f"[{SETTINGS['packages_dir'].env}]")
        p.add_argument("--runtime", choices=("python", "pyodide", "javascript"),
                       default=default if given_before else "python",
                       help="pyodide: pure-Python wheels, py-compiled, with a Pyodide lock "
                            "file (install replaces its environment; use it with "
                            f"{SETTINGS['pyodide_packages_dir'].flag}); javascript: "
                            "pure-JavaScript npm packages, installed with npm --ignore-scripts "
                            "(the n8n runner's --js-packages-dir)")

    pk = sub.add_parser("packages", help="the third-party environment python snippets see")
    common(pk, given_before=False)
    actions = pk.add_subparsers(dest="action", required=True, parser_class=_Parser)
    for action, summary, names in (
            ("install", "add packages to the environment", "e.g. 'pandas==2.*' requests"),
            ("remove", "remove packages from the environment (python)", "the packages' names"),
            ("list", "list what the environment holds", None)):
        act = actions.add_parser(action, help=summary, description=summary[0].upper()
                                 + summary[1:] + ".")
        if names is not None:
            act.add_argument("specs", nargs="*", metavar="SPEC", help=names)
        else:
            act.set_defaults(specs=[])
        common(act, given_before=True)


class _SettingFlag(argparse.Action):
    """A schema setting's flag: a list's flag may be repeated (the values add up); an old
    name of the flag works, and is noted so that the user learns the new one."""

    def __init__(self, option_strings: list[str], dest: str, setting: Setting,
                 **kwargs: Any) -> None:
        self.setting = setting
        super().__init__(option_strings, dest, nargs=0 if setting.kind == "bool" else None,
                         **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        if option_string in self.setting.old:
            namespace.renamed_flags.append(f"{option_string} is now {self.setting.flag}")
        if self.setting.kind == "bool":
            setattr(namespace, self.dest, True)
        elif self.setting.kind == "list":
            setattr(namespace, self.dest, [*(getattr(namespace, self.dest) or []), values])
        else:
            setattr(namespace, self.dest, values)


def _setting_flags(p: argparse.ArgumentParser, command: str) -> None:
    """``--config`` and a flag for every setting ``command`` takes, named by the schema."""
    p.add_argument("--config", metavar="TOML", help="settings file (SANDBOX_* and flags win)")
    p.set_defaults(renamed_flags=[])
    for s in settings_for(command):
        default = "" if s.kind == "bool" or s.default in ("", ()) else f"; default: {_shown(s)}"
        action: Any = functools.partial(_SettingFlag, setting=s)
        p.add_argument(s.flag, dest=s.name, default=None, metavar=s.metavar, action=action,
                       help=f"{s.help}{default} [{s.env}]")
        if s.old:  # they still work, noted as old; the help shows the schema's name only
            p.add_argument(*s.old, dest=s.name, default=None, metavar=s.metavar, action=action,
                           help=argparse.SUPPRESS)


def _shown(s: Setting) -> str:
    return ",".join(s.default) if isinstance(s.default, tuple) else str(s.default)


def _settings(args: argparse.Namespace, command: str) -> ServiceConfig:
    """The settings of ``command``: the file, then SANDBOX_*, then flags. Unknown SANDBOX_*
    names and old flag names are warned about on stderr; a bad value is a UsageError."""
    for note in (*unknown_env(), *args.renamed_flags):
        print(f"sandbox: warning: {note}", file=sys.stderr)
    try:
        return ServiceConfig.load(args.config, flags={s.name: getattr(args, s.name)
                                                      for s in settings_for(command)},
                                  command=command)
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc


def _curve_client(endpoint: str, config: ServiceConfig, key: str) -> Any:
    """The CURVE keys for a tcp:// endpoint; none for ipc (guarded by the socket file's mode,
    and served by a plain socket even where the daemon's tcp endpoints have CURVE)."""
    if not endpoint.startswith("tcp://"):
        return None
    if not config.curve_dir:
        if endpoint.startswith("tcp://") and not config.insecure:
            raise UsageError("tcp:// needs --curve-dir (see `sandbox keys`) or --insecure")
        return None
    from sandbox.link import CurveClient

    try:
        return CurveClient.load(config.curve_dir, key)
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc


def _endpoint(endpoint: str) -> str:
    try:
        check_endpoint(endpoint)
    except ConfigError as exc:
        raise UsageError(f"--connect: {exc}") from exc
    return endpoint


def result_json(result: Result) -> dict[str, Any]:
    return result.to_dict()


def _print_human(result: Result, *, streamed: bool = False) -> None:
    """``streamed``: the output was printed as it came, so only the result is left to print."""
    if streamed:
        if result.stdout and not result.stdout.endswith("\n"):
            sys.stdout.write("\n")
        if result.truncated:
            sys.stdout.write("[output truncated]\n")
    elif result.stdout:
        sys.stdout.write(result.stdout if result.stdout.endswith("\n") else result.stdout + "\n")
        if result.truncated:
            sys.stdout.write("[output truncated]\n")
    if result.stderr and not streamed:
        sys.stderr.write(result.stderr if result.stderr.endswith("\n") else result.stderr + "\n")
    sys.stdout.flush()
    if result.ok:
        if isinstance(result.value, str):
            print(result.value)  # as it is, as `echo` would: for pipes and for people
        elif result.value is not None:
            print(json.dumps(to_jsonable(result.value), indent=2, ensure_ascii=False))
        return
    if result.error and result.error.traceback:
        # its last line says the exception and its message: said once, not again below it
        sys.stderr.write(result.error.traceback if result.error.traceback.endswith("\n")
                         else result.error.traceback + "\n")
        return
    print(f"{result.status.value}: {result.message}", file=sys.stderr)


def _read_code(path: str) -> str:
    """The snippet's code from ``path`` (``-``: stdin), refused past the code cap before it
    is read whole (a 40 MB file is not read to be refused)."""
    cap = amount(MAX_CODE_BYTES, "code_bytes")
    try:
        if path == "-":
            raw = sys.stdin.buffer.read(MAX_CODE_BYTES + 1)
            if len(raw) > MAX_CODE_BYTES:
                raise UsageError(f"the code on stdin is over the {cap} limit")
        else:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size > MAX_CODE_BYTES:
                    raise UsageError(f"{path} is {amount(size, 'size_bytes')}, over the {cap} "
                                     "limit for code")
                raw = f.read(MAX_CODE_BYTES + 1)
                if len(raw) > MAX_CODE_BYTES:  # a file that grew, or no size (a pipe)
                    raise UsageError(f"{path} is over the {cap} limit for code")
        return raw.decode("utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        where = "the code on stdin" if path == "-" else path
        raise UsageError(f"{where} is not UTF-8 text: {exc}") from exc


def _read_data(args: argparse.Namespace) -> Any:
    """The input value: ``--data JSON``, ``--data @FILE`` or ``--data-file FILE`` (JSON with
    the tags of ``sandbox.jsonview``); None when none is given."""
    text, source = args.data, "--data"
    path = args.data_file
    if text is not None and path is not None:
        raise UsageError("give --data or --data-file, not both")
    if text is not None and text.startswith("@"):
        path, source = text[1:], "--data @FILE"
    if path is not None:
        source = f"{source if source != '--data' else '--data-file'} {path}"
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    if text is None:
        return None
    try:
        return from_json_data(text)
    except ValueError as exc:
        raise UsageError(f"{source}: {exc}") from exc


def _read_capped(path: str, cap: int, what: str) -> bytes:
    """``path``'s bytes (``-``: this command's stdin), refused past ``cap`` before it is read
    whole."""
    try:
        if path == "-":
            raw = sys.stdin.buffer.read(cap + 1)
        else:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size > cap:
                    raise UsageError(f"{what} {path} is {amount(size, 'size_bytes')}, over the "
                                     f"{amount(cap, 'size_bytes')} limit")
                raw = f.read(cap + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(raw) > cap:
        raise UsageError(f"{what} {'on stdin' if path == '-' else path} is over the "
                         f"{amount(cap, 'size_bytes')} limit")
    return raw


def _io_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options of ``--stdin``, ``--separate-stderr``, ``--stream``, ``--file`` and
    ``--return-files``. The rule for this command's stdin: it carries the code (``-``, the
    default) or the snippet's stdin (``--stdin -``), never both."""
    options: dict[str, Any] = {}
    if args.stdin_from is not None:
        if args.stdin_from == "-" and args.file == "-":
            raise UsageError("--stdin - and the code cannot both come from this command's "
                             "stdin: give the code as FILE")
        options["stdin"] = _read_capped(args.stdin_from, MAX_STDIN_BYTES, "--stdin")
    if args.separate_stderr:
        options["separate_stderr"] = True
    if args.stream:
        options["stream"] = True
    if args.put_files:
        files: dict[str, bytes] = {}
        for given in args.put_files:
            name, eq, path = given.partition("=")
            if not eq or not name or not path:
                raise UsageError(f"--file {given}: give NAME=PATH")
            if path == "-":
                raise UsageError(f"--file {given}: give a file's path (this command's stdin "
                                 "carries the code, or --stdin -)")
            if name in files:
                raise UsageError(f"--file {name} is given twice")
            files[name] = _read_capped(path, MAX_FILES_BYTES, "--file")
        options["files"] = files
    if args.return_files is not None:
        options["return_files"] = True
    return options


def _finish(args: argparse.Namespace, result: Result, streamed: bool = False) -> int:
    """Print the result (its files written into --return-files' DIR first) and its exit
    code: a returned file that could not be written makes an ok task exit 1."""
    refused: dict[str, str] = {}
    if args.return_files is not None and result.files:
        from sandbox.service.returned import write_under

        try:
            refused = write_under(args.return_files, result.files)
        except OSError as exc:
            raise UsageError(f"--return-files {args.return_files}: {exc.strerror or exc}") from exc
    if args.json:
        print(json.dumps(result_json(result), ensure_ascii=False, allow_nan=False))
    else:
        _print_human(result, streamed=streamed)
    for name, why in (result.files_skipped or {}).items():
        print(f"sandbox: {name!r} did not come back: {why}", file=sys.stderr)
    for name, why in refused.items():
        print(f"sandbox: {name!r} not written into {args.return_files}: {why}", file=sys.stderr)
    return EXIT_OK if result.ok and not refused else EXIT_STATUS


def _print_chunk(as_json: bool, chunk: OutputChunk) -> None:
    """One piece of a streaming task's output, as it came (``--stream``)."""
    if as_json:
        sys.stdout.write(json.dumps({"stream": chunk.stream, "text": chunk.text},
                                    ensure_ascii=False) + "\n")
        sys.stdout.flush()
        return
    out = sys.stderr if chunk.stream == "stderr" else sys.stdout
    out.write(chunk.text)
    out.flush()


def _check_limits(args: argparse.Namespace) -> None:
    """Each limit given by its flag, checked against its range and named by its flag: the
    message a user reads is about ``--timeout``, not the schema's ``timeout_s``."""
    from sandbox.errors import ConfigError

    for name, flag in LIMIT_FLAGS.items():
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is None:
            continue
        try:
            Limits().replace(**{name: value})
        except ConfigError as exc:
            message = str(exc)
            raise UsageError(flag + message[len(name):] if message.startswith(name)
                             else f"{flag}: {message}") from exc


def _exec(args: argparse.Namespace) -> int:
    _connect_default(args)
    runtime = registry.canonical(args.runtime)
    if runtime is None:
        known = ", ".join(sorted(registry.ALIASES))
        raise UsageError(f"unknown runtime {args.runtime!r} (known: {known})")
    if args.session is not None or args.close_session:
        return _exec_session(args, runtime)
    data = _read_data(args)
    _check_limits(args)
    limits = dict(timeout_s=args.timeout, memory_mb=args.memory, stdout_bytes=args.stdout_bytes,
                  result_bytes=args.result_bytes)
    code = _read_code(args.file)
    settings = _settings(args, "exec")
    options: dict[str, Any] = dict(limits)
    options.update(_io_options(args))
    if (options.get("files") or options.get("return_files")) and args.connect is None \
            and not settings.files_mb:
        raise UsageError("--file and --return-files need a directory per task: give "
                         "--files-mb MB")
    facts = registry.RUNTIMES[runtime]
    if args.policy not in facts.policies:
        raise UsageError(f"--policy {args.policy} applies to python, not {runtime}")
    if args.imports and not facts.language_layer:
        raise UsageError(f"--import applies to python and pyodide, not {runtime}")
    if facts.language_layer:
        options.update(imports=args.imports)
    if args.policy != "default":
        options.update(policy=args.policy)
    if args.reuse_key is not None and args.isolation != "worker":
        raise UsageError("--reuse-key applies to --isolation worker")
    if args.isolation is not None:
        options.update(isolation=args.isolation, reuse_key=args.reuse_key)
    if args.runtime_version:
        options["version"] = args.runtime_version
    on_chunk = functools.partial(_print_chunk, args.json) if args.stream else None
    if args.connect is not None:
        result = _exec_on_daemon(args, settings, _request(runtime, code, data, options, Limits()),
                                 on_chunk)
    else:
        # the embedded runner registered before the task is sent: no other will ever come,
        # so a version it does not have is said at once, not after the queue wait
        options["wait_for_runner"] = False
        try:
            pool = settings.pool(size=1)
        except ConfigError as exc:
            raise UsageError(str(exc)) from exc
        req = _request(runtime, code, data, options, pool.default_limits)
        try:
            with Client(pool=pool, runtimes=(runtime,)) as client:
                result = _run(client, req, on_chunk)
        except JailError as exc:
            # which runtimes this host can run, and why the others not, beside the reason
            raise JailError(f"{exc}\n{_host_report(pool)}") from exc
    return _finish(args, result, streamed=args.stream)


def _exec_session(args: argparse.Namespace, runtime: str) -> int:
    """``exec --session ID``: one call of a session on a daemon (opened when it is not),
    or ``--close-session``. An embedded broker's session would end with the command."""
    if args.session is None:
        raise UsageError("--close-session applies to --session ID")
    if args.connect is None:
        raise UsageError("--session needs --connect: a session lives in a daemon, and an "
                         "embedded one ends with this command")
    for flag, given in (("--isolation", args.isolation), ("--reuse-key", args.reuse_key),
                        ("--version", args.runtime_version or None),
                        ("--policy restricted", args.policy != "default" or None),
                        ("--stdin", args.stdin_from),
                        ("--separate-stderr", args.separate_stderr or None),
                        ("--stream", args.stream or None)):
        if given is not None:
            raise UsageError(f"{flag} does not apply to a session's call")
    if args.close_session and (args.put_files or args.return_files is not None):
        raise UsageError("--file and --return-files apply to a session's call, not its close")
    io = _io_options(args)
    _check_limits(args)
    settings = _settings(args, "exec")
    from sandbox.link import reach
    import zmq

    endpoint = _endpoint(args.connect)
    curve = _curve_client(endpoint, settings, args.key)
    problem = reach(zmq.Context.instance(), endpoint, curve, timeout_s=_REACH_S)
    if problem is not None:
        result = Result.rejected(problem)
    else:
        with Client(endpoint, curve=curve, insecure=settings.insecure) as client:
            session = ClientSession(client, runtime, args.session)
            if args.close_session:
                result = session.close()
            else:
                data, code = _read_data(args), _read_code(args.file)
                try:
                    client.session(runtime, args.session, memory_mb=args.memory)
                except SessionError as exc:
                    result = Result.rejected(str(exc))
                else:
                    result = session.run(code, data, timeout_s=args.timeout,
                                         stdout_bytes=args.stdout_bytes,
                                         result_bytes=args.result_bytes, imports=args.imports,
                                         files=io.get("files"),
                                         return_files=io.get("return_files", False))
    return _finish(args, result)


def _request(runtime: str, code: str, data: Any, options: dict[str, Any], defaults: Limits) -> Request:
    """The task's request, checked here once (a bad one is a usage error) and sent as it is."""
    try:
        return request(runtime, code, data, Options.of(**options), defaults=defaults)
    except RequestError as exc:
        raise UsageError(str(exc)) from exc


def _connect_default(args: argparse.Namespace) -> None:
    """A bare ``--connect`` right before the code's file (``--connect -``, ``--connect
    job.py``) took the file as its endpoint: an endpoint always has "://", a file need not."""
    value = args.connect
    if value == "default":
        args.connect = default_endpoint()
    elif (value is not None and "://" not in value and args.file == "-"
          and (value == "-" or os.path.isfile(value))):
        args.connect, args.file = default_endpoint(), value


_POOL_SETTINGS = ("stdlib_allow", "external_allow", "packages_dir", "preload", "cgroup",
                  "cgroup_root", "pyodide_packages_dir", "pyodide_cache_dir", "pyodide_node",
                  "pyodide_no_namespaces")


def _exec_on_daemon(args: argparse.Namespace, settings: ServiceConfig, req: Request,
                    on_chunk: Callable[[OutputChunk], None] | None = None) -> Result:
    """One task through a daemon, after checking at once that one answers there."""
    from sandbox.link import reach

    endpoint = _endpoint(args.connect)
    given = [SETTINGS[name].flag for name in _POOL_SETTINGS if getattr(args, name) is not None]
    if given:
        raise UsageError(f"{'/'.join(given)}: the daemon's settings; pass them to `sandbox serve`")
    curve = _curve_client(endpoint, settings, args.key)
    import zmq

    problem = reach(zmq.Context.instance(), endpoint, curve, timeout_s=_REACH_S)
    if problem is not None:
        return Result.rejected(problem)
    with Client(endpoint, curve=curve, insecure=settings.insecure) as client:
        return _run(client, req, on_chunk)


def _run(client: Client, req: Request,
         on_chunk: Callable[[OutputChunk], None] | None = None) -> Result:
    """The task's Result (``on_chunk``: called with each piece of a streaming task's output
    as it comes). Ctrl-C cancels it (KeyboardInterrupt goes on up, to be said in one line);
    the jails are in sessions of their own, so the terminal's SIGINT reached this process
    only, and the client's close that follows tears down what it started."""
    import signal

    handle = client.submit_request(req)
    try:
        if on_chunk is not None:
            for chunk in handle.output():
                on_chunk(chunk)
        return handle.result()
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup
        handle.cancel()
        raise


_REACH_S = 5.0  # how long `exec --connect` waits for a daemon's handshake before it says so


def _host_report(pool: PoolConfig) -> str:
    from sandbox.service import hostcheck

    return "on this host:\n" + "\n".join("  " + v.line() for v in hostcheck.runtimes(pool))


def _runtimes(args: argparse.Namespace) -> int:
    from sandbox.service import hostcheck

    settings = _pyodide_settings()
    verdicts = hostcheck.runtimes(PoolConfig(
        pyodide=PyodideConfig(no_namespaces=args.pyodide_no_namespaces,
                              cache_dir=settings.pyodide_cache_dir or None,
                              node=settings.pyodide_node or None)))
    for verdict in verdicts:
        print(verdict.line(version=True))
    return EXIT_OK if all(v.works for v in verdicts) else EXIT_STATUS


def _serve(args: argparse.Namespace) -> int:
    from sandbox.host.allocator import keep_large_blocks
    from sandbox.service.daemon import serve

    keep_large_blocks()
    settings = _settings(args, "serve")
    _log_as(settings)
    return serve(settings)


def _log_as(settings: ServiceConfig) -> None:
    from sandbox.service import logs

    logs.configure(settings.log_level, settings.log_format)


def _runner(args: argparse.Namespace) -> int:
    import signal
    import threading

    from sandbox.host.allocator import keep_large_blocks
    from sandbox.host.runner import Runner, RunnerConfig

    keep_large_blocks()
    if args.settings is not None:  # started by `sandbox serve`: its settings, as they are
        try:
            config = ServiceConfig.from_json(args.settings)
        except ConfigError as exc:
            raise UsageError(str(exc)) from exc
    else:
        config = _settings(args, "runner")
    _log_as(config)
    endpoint = _endpoint(args.connect)
    runtimes = tuple(registry.canonical(r) or r for r in config.runtimes)
    try:
        pool = config.pool()
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc
    runner_config = RunnerConfig(endpoint, runtimes=runtimes, groups=config.groups,
                                 slots=config.slots, name=args.name,
                                 heartbeat_s=config.heartbeat_s, liveness=config.liveness,
                                 curve=_curve_client(endpoint, config, args.key), pool=pool,
                                 lifeline_fd=args.lifeline)
    stop = threading.Event()
    started: list[Runner] = []
    if args.lifeline is not None:
        # Started by `sandbox serve`: a SIGTERM or Ctrl-C sent to the whole process group is
        # the daemon's to handle (it drains first); this runner stops when its lifeline closes.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    else:
        signals: list[int] = []

        def on_signal(signum: int, frame: object) -> None:
            # ours from before the jails start: then it stops the runner as soon as it exists;
            # once it serves, the first SIGTERM or Ctrl-C drains it, a second stops it
            signals.append(signum)
            if started and len(signals) == 1:
                started[0].drain(config.grace_s)
            else:
                stop.set()
                if started:
                    started[0].wake()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    log = logging.getLogger("sandbox.runner")
    name = f"runner {args.name}" if args.name else "runner"
    log.info("%s starting: jails for %s, %d slots, broker at %s", name, ", ".join(runtimes),
             config.slots, endpoint)
    probes = None
    if config.runner_http:
        from sandbox.service.runner_probes import RunnerProbes

        try:
            probes = RunnerProbes(config.runner_http)
        except ConfigError as exc:
            print(f"sandbox: {exc}", file=sys.stderr)
            return EXIT_STATUS
    try:
        runner = Runner(runner_config, stop=stop)
        started.append(runner)
        if probes is not None:
            probes.attach(runner)
        if args.lifeline is None:
            signal.set_wakeup_fd(runner.loop.wake_fd)  # a signal wakes the loop's poll at once
        try:
            runner.serve(stop)
            log.info("%s stopping: its jails end", name)
        finally:
            if probes is not None:
                probes.close()
                probes = None
            runner.close()
    finally:
        if probes is not None:
            probes.close()
    log.info("%s stopped", name)
    return 0


def _packages(args: argparse.Namespace) -> int:
    from sandbox.jail import packages

    for note in unknown_env():
        print(f"sandbox: warning: {note}", file=sys.stderr)
    if args.runtime == "pyodide":
        return _pyodide_packages(args)
    if args.runtime == "javascript":
        return _npm_packages(args)
    try:
        settings = ServiceConfig.load(flags={"packages_dir": args.packages_dir}, command="packages")
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc
    directory = settings.packages_dir or packages.default_dir()
    if args.action == "list":
        held = packages.contents(directory)
        return _listing(directory, None if held is None else [i.line() for i in held],
                        "environment")
    if not args.specs:
        raise UsageError(f"packages {args.action}: name at least one package")
    try:
        if args.action == "remove":
            left = packages.remove(args.specs, directory)
            print(f"removed {' '.join(args.specs)} from {directory}; it holds: "
                  + (" ".join(left) or "(nothing)"))
            return EXIT_OK
        packages.add(args.specs, directory)
    except ConfigError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return EXIT_STATUS
    print(f"installed into {directory}; serve with --packages-dir {directory} and allow "
          f"modules with --external-allow")
    return EXIT_OK


def _listing(directory: str, lines: list[str] | None, what: str) -> int:
    """``packages list`` for every runtime: the directory, then a line per package (or
    "(empty)"); none there: one line on stderr and exit 1."""
    if lines is None:
        print(f"no {what} in {directory}", file=sys.stderr)
        return EXIT_STATUS
    print(f"{directory}:" + ("" if lines else " (empty)"))
    for line in lines:
        print(f"  {line}")
    return EXIT_OK


def _npm_packages(args: argparse.Namespace) -> int:
    from sandbox.jail import npm

    directory = args.packages_dir or npm.default_dir()
    if args.action == "list":
        listed = npm.contents(directory)
        return _listing(directory, None if listed is None else [f"{n}@{v}" for n, v in listed],
                        "npm packages")
    if args.action != "install":
        raise UsageError(f"packages {args.action} applies to python (javascript: install)")
    try:
        held = npm.install(args.specs, directory)
    except ConfigError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return EXIT_STATUS
    print(f"installed {' '.join(f'{n}@{v}' for n, v in held)} into {directory}; serve with "
          f"sandbox n8n-runner --js-packages-dir {directory} and allow modules with "
          "NODE_FUNCTION_ALLOW_EXTERNAL")
    return EXIT_OK


def _pyodide_packages(args: argparse.Namespace) -> int:
    from sandbox.pyodide import packages as pyodide_packages

    directory = args.packages_dir or pyodide_packages.default_dir()
    if args.action == "list":
        held = pyodide_packages.contents(directory)
        return _listing(directory, None if held is None else [i.line() for i in held],
                        "pyodide environment")
    if args.action != "install":
        raise UsageError(f"packages {args.action} applies to python (pyodide: install the "
                         "whole list again)")
    if not args.specs:
        raise UsageError("packages install: name at least one package")
    try:
        settings = _pyodide_settings()
        manifest = pyodide_packages.install(args.specs, directory,
                                            cache_dir=settings.pyodide_cache_dir or None,
                                            node=settings.pyodide_node or None)
    except SandboxError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return EXIT_STATUS
    print(f"installed {' '.join(manifest['packages'])} into {directory}; workers load it with "
          f"{SETTINGS['pyodide_packages_dir'].flag} {directory} and snippets import it with "
          "--external-allow")
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


def _say(message: str, status: Status, as_json: bool) -> None:
    """One line on stderr; with ``--json`` also the one JSON object, on stdout."""
    print(f"sandbox: {message}", file=sys.stderr)
    if as_json:
        print(json.dumps(result_json(Result(status, message)), ensure_ascii=False))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # `exec --json`: whoever parses stdout gets one object, whatever went wrong
    as_json = "exec" in argv and "--json" in argv[argv.index("exec"):]
    try:
        args, extra = _parser().parse_known_args(argv)
        if extra and args.command == "packages" and not any(x.startswith("-") for x in extra):
            # `packages install --runtime pyodide six`: names after an option are names too
            args.specs = [*args.specs, *extra]
        elif extra:
            raise UsageError(f"unrecognized arguments: {' '.join(extra)}")
        command = _COMMANDS.get(args.command)
        if command is not None:
            return command(args)
        raise UsageError(f"unknown command {args.command!r}")
    except UsageError as exc:
        _say(str(exc), Status.REJECTED, as_json)
        return EXIT_USAGE
    except SandboxError as exc:
        _say(str(exc), Status.CRASHED, as_json)
        return EXIT_STATUS
    except KeyboardInterrupt:
        _say(INTERRUPTED if "exec" in argv else "interrupted", Status.CRASHED, as_json)
        return EXIT_INTERRUPTED


def _n8n_runner(args: argparse.Namespace) -> int:
    from sandbox.n8n.cli import run

    return run(args)


def _pyodide_settings() -> ServiceConfig:
    """The settings (``pyodide_cache_dir``, ``pyodide_node``: from SANDBOX_* variables) of
    the commands that take no settings flags of their own."""
    try:
        return ServiceConfig.load(command="packages")
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc


def _pyodide(args: argparse.Namespace) -> int:
    from sandbox.pyodide import dist as pyodide_dist

    settings = _pyodide_settings()
    return pyodide_dist.main([], cache_dir=settings.pyodide_cache_dir or None,
                             node=settings.pyodide_node or None)


_COMMANDS = {"exec": _exec, "serve": _serve, "runner": _runner, "keys": _keys,
             "n8n-runner": _n8n_runner, "packages": _packages, "pyodide": _pyodide,
             "runtimes": _runtimes}


if __name__ == "__main__":
    sys.exit(main())
