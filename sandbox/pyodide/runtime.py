"""The pyodide runtime's host side: what its jail mounts, how its workers are set up.

A **worker** is one Node.js process (``runtimes/pyodide/worker.mjs``) that loads Pyodide
once and then serves tasks one at a time over its channel, each with fresh globals and the
interpreter's state put back after it (``runtimes/pyodide/guest.py``). It is born like any
child of the jail: the zygote (pid 1, as for ``python``) forks on ``spawn`` and hands the
host worker the child's channel and a pidfd; the child installs the worker seccomp filter
and execs Node (``runtimes/pyodide/launch.py``). The pool (``sandbox.host.pool_core``) serves it
like every child, with the rules for children that are workers: it is idle once it says
ready (rule 1r), serves tasks of one reuse key (every pyodide task has one:
``sandbox.request``), is killed from outside ``kill_grace_s`` after a timeout its own
interrupt did not end (rule 3), and retires after any outcome but ``ok``/``error``, when its
envelope asks, after ``worker_tasks`` tasks or ``worker_age_s``.

What lives here is only what is pyodide's own: the distribution and Node (mounted read-only
besides the zygote's Python), the ``init`` message's worker spec, the pool rules it
changes, and what a jail without namespaces gives up. The jail itself is the one every
runtime gets (``sandbox.jail.launch``: user, pid, mount, net, ipc, uts and cgroup namespaces, a
read-only root, the jail-wide seccomp policy, rlimits, the cgroup caps).

On a host that denies namespaces (a default Docker container), ``no_namespaces=True``
(``PyodideConfig``; ``--pyodide-no-namespaces``) runs the same zygote and workers under
nsjail without any namespace. It gives up what ``GIVEN_UP_WITHOUT_NAMESPACES`` says;
WebAssembly, the JS lockdown, the jail-wide seccomp policy and the worker filter, the
rlimits and (where the cgroup tree is writable) the cgroup caps remain.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal

from runtimes import protocol
from sandbox.pyodide import dist as pyodide_dist
from sandbox.pyodide import packages as pyodide_packages
from sandbox.config import PoolConfig, PyodideConfig
from sandbox.jail.launch import RuntimeSetup
from sandbox.jail.mounts import JAIL_ROOT, Mount, _linked_libraries, _staging_dir
from sandbox.host.pool_core import PoolRules

JAIL_NODE = "/usr/bin/node"
JAIL_DIST = f"{JAIL_ROOT}/pyodide"
JAIL_PACKAGES = f"{JAIL_ROOT}/pyodide-packages"
EXIT_FATAL = 71  # worker.mjs: Pyodide itself failed
GIVEN_UP_WITHOUT_NAMESPACES = (
    "the user, pid, mount, network, ipc, uts and cgroup namespaces: the worker sees the "
    "host's file system (as nobody, read-only where the host says so) instead of a read-only "
    "root of its own, shares the host's network stack (sockets stay forbidden by seccomp), "
    "and can see the host's processes (signals and ptrace stay forbidden by seccomp)"
)
OPT_IN = ("PyodideConfig(no_namespaces=True), `--pyodide-no-namespaces`, "
          "or pyodide_no_namespaces = true in the service's settings")


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where the worker finds its parts: jail paths, or host paths without a mount namespace."""

    node: str
    dist: str
    runtimes: str
    msgpack: str
    packages: str | None

    def paths(self) -> tuple[str, ...]:
        return tuple(p for p in (self.dist, self.runtimes, self.msgpack, self.packages) if p)


def layout(dist: pyodide_dist.Distribution, packages_dir: str | None, namespaces: bool) -> Layout:
    if namespaces:
        return Layout(JAIL_NODE, JAIL_DIST, f"{JAIL_ROOT}/runtimes", f"{JAIL_ROOT}/lib/msgpack",
                      JAIL_PACKAGES if packages_dir else None)
    staged = _staging_dir()
    return Layout(dist.node, dist.directory, os.path.join(staged, "runtimes"),
                  os.path.join(staged, "lib", "msgpack"), packages_dir)


def extra_mounts(dist: pyodide_dist.Distribution, packages_dir: str | None) -> tuple[Mount, ...]:
    """Node.js (and the libraries it links), the distribution, the packages environment."""
    mounts = [Mount(dist.node, JAIL_NODE), Mount(dist.directory, JAIL_DIST)]
    if packages_dir:
        mounts.append(Mount(os.path.realpath(packages_dir), JAIL_PACKAGES))
    mounts += [Mount(lib, lib) for lib in _linked_libraries((dist.node,))]
    return tuple(mounts)


def worker_spec(config: PyodideConfig, where: Layout) -> protocol.WorkerSpec:
    """The ``worker`` field of the zygote's init (``runtimes.pyodide.launch`` execs it)."""
    settings: dict[str, object] = {
        "dist": where.dist, "runtimes": where.runtimes, "msgpack": where.msgpack,
        "wasm_max_mb": config.wasm_max_mb, "preload": list(config.preload),
    }
    if where.packages and config.packages_dir:
        settings.update(pyodide_packages.worker_settings(config.packages_dir, where.packages))
    model = config.permission_model
    return protocol.WorkerSpec(
        node=where.node, script=f"{where.runtimes}/pyodide/worker.mjs",
        heap_mb=config.heap_mb, address_space_mb=config.address_space_mb,
        cpu_s=config.worker_cpu_s, settings=json.dumps(settings),
        read_paths=where.paths() if model else (),
        write_paths=(where.packages,) if model and where.packages else (),
        debug=config.debug,
    )


def pool_rules(rules: PoolRules, config: PyodideConfig) -> PoolRules:
    """A pool of pyodide workers: readiness, the grace of a timeout, what their deaths mean."""
    return dataclasses.replace(
        rules,
        worker_tasks=config.worker_tasks, worker_age_s=config.worker_age_s,
        ready_timeout_s=config.ready_timeout_s, kill_grace_s=config.kill_grace_s,
        exit_reasons=((EXIT_FATAL, "the Pyodide runtime failed during the task (a fatal error "
                                   "inside the WebAssembly interpreter)"),),
        # what Node does when V8's heap is full (it prints why, to /dev/null)
        signal_reasons=((signal.SIGABRT, "the Node.js worker aborted, most likely at its "
                                         f"JavaScript heap limit ({config.heap_mb} MB)"),),
    )


def jail_setup(config: PoolConfig) -> RuntimeSetup:
    """What a pyodide jail adds: Node and the distribution mounted, the workers' spec; or,
    with ``no_namespaces``, no namespace at all (and the cgroup caps only if we may)."""
    own = config.pyodide
    dist = pyodide_dist.ensure(cache_dir=own.cache_dir, node=own.node)
    namespaces = not own.no_namespaces
    return RuntimeSetup(
        extra_mounts=extra_mounts(dist, own.packages_dir) if namespaces else (),
        namespaces=namespaces,
        worker=worker_spec(own, layout(dist, own.packages_dir, namespaces)),
        cgroup_optional=not namespaces,
        without_namespaces=OPT_IN,
        given_up=GIVEN_UP_WITHOUT_NAMESPACES,
    )
