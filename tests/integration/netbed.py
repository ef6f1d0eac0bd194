"""A multi-host test bed on one machine: runners in network namespaces of their own.

    root namespace: bridge sbxbr<tag> 10.<n>.<m>.1/24, the broker (``sandbox serve``), clients
        |-- veth -- namespace sbx-<tag>-1: 10.<n>.<m>.11, a ``sandbox runner`` (tcp + CURVE)
        |-- veth -- namespace sbx-<tag>-2: 10.<n>.<m>.12, ...

A runner is started with ``nsenter --net`` (not ``ip netns exec``, which remounts /sys and
hides the cgroup hierarchy its jails need). A link is cut by iptables rules inside the
runner's namespace (they go with it), packets are dropped at random the same way
(``-m statistic``), and traffic is delayed by ``DelayProxy``, a TCP proxy in the root
namespace (this kernel has no netem). ``Bed.close`` removes every namespace, link and
bridge it made, also after a failure; its names carry the test process's pid, so two runs
never meet.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

VENV_BIN = Path(sys.executable).parent


def why_not() -> str | None:
    """Why the bed cannot be built here, or None."""
    if os.geteuid() != 0:
        return "the multi-host bed needs root (network namespaces, veth, a bridge)"
    if shutil.which("iptables") is None:
        _provision_iptables()
    for tool in ("ip", "nsenter", "iptables"):
        if shutil.which(tool) is None:
            return f"the multi-host bed needs {tool} (apt-get install iproute2 util-linux iptables)"
    probe = f"sbxprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode:
        return f"cannot make a network namespace: {made.stderr.strip()}"
    try:
        rule = subprocess.run(["ip", "netns", "exec", probe, "iptables", "-A", "INPUT", "-m",
                               "statistic", "--mode", "random", "--probability", "0.1", "-j",
                               "DROP"], capture_output=True, text=True)
        if rule.returncode:
            return f"iptables cannot filter in a namespace here: {rule.stderr.strip()}"
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _provision_iptables() -> None:
    """Install iptables from the distribution where it is missing, as the suite installs its
    real n8n on first use: Debian's base image has ip and nsenter but not iptables. A failure
    leaves it missing, and ``why_not`` says so."""
    if shutil.which("apt-get") is None:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "install", "-y", "-q", "--no-install-recommends", "iptables"],
                 ["apt-get", "update", "-q"],
                 ["apt-get", "install", "-y", "-q", "--no-install-recommends", "iptables"]):
        try:
            done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
        except (OSError, subprocess.TimeoutExpired):
            return
        if argv[1] == "install" and done.returncode == 0:
            return


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True)


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class Bed:
    """The bridge and the namespaces; runners and the broker are started through it."""

    def __init__(self, tmp: Path, hosts: int) -> None:
        self.tmp = tmp
        self.tag = f"{os.getpid() % 100000}"
        pid = os.getpid()
        self.net = f"10.{200 + pid % 50}.{pid // 50 % 250}"
        self.bridge = f"sbxbr{self.tag}"
        self.hub = f"{self.net}.1"
        self.namespaces: list[str] = []
        self.links: list[str] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self.proxies: list[DelayProxy] = []
        try:
            _run("ip", "link", "add", self.bridge, "type", "bridge")
            self.links.append(self.bridge)
            _run("ip", "addr", "add", f"{self.hub}/24", "dev", self.bridge)
            _run("ip", "link", "set", self.bridge, "up")
            for _ in range(hosts):
                self.add_host()
            self.keys = tmp / "keys"
            _run(str(VENV_BIN / "sandbox"), "keys", str(self.keys))
        except BaseException:
            self.close()
            raise

    def add_host(self) -> str:
        n = len(self.namespaces) + 1
        ns, host, peer = f"sbx-{self.tag}-{n}", f"sbx{self.tag}h{n}", f"sbx{self.tag}n{n}"
        _run("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        _run("ip", "link", "add", host, "type", "veth", "peer", "name", peer)
        self.links.append(host)
        _run("ip", "link", "set", peer, "netns", ns)
        _run("ip", "link", "set", host, "master", self.bridge)
        _run("ip", "link", "set", host, "up")
        inside = ("ip", "netns", "exec", ns)
        _run(*inside, "ip", "addr", "add", f"{self.net}.{10 + n}/24", "dev", peer)
        _run(*inside, "ip", "link", "set", peer, "up")
        _run(*inside, "ip", "link", "set", "lo", "up")
        return ns

    # -- processes ---------------------------------------------------------------------------

    def start_broker(self, runner_port: int, http_port: int, *extra: str) -> subprocess.Popen[bytes]:
        with open(self.tmp / f"broker-{len(self.procs)}.log", "wb") as log:
            proc = subprocess.Popen(
                [str(VENV_BIN / "sandbox"), "serve", "--bind", f"ipc://{self.tmp}/clients.sock",
                 "--runner-bind", f"tcp://{self.hub}:{runner_port}", "--curve-dir",
                 str(self.keys), "--runners", "0", "--http", f"127.0.0.1:{http_port}",
                 "--heartbeat-s", "1", "--liveness", "3", "--grace-s", "10", *extra],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def start_runner(self, ns: str, endpoint: str, name: str, slots: int = 2) -> subprocess.Popen[bytes]:
        with open(self.tmp / f"runner-{name}.log", "ab") as log:
            proc = subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{ns}", str(VENV_BIN / "sandbox"), "runner",
                 "--connect", endpoint, "--curve-dir", str(self.keys), "--key", "runner",
                 "--slots", str(slots), "--runtimes", "python", "--name", name,
                 "--heartbeat-s", "1", "--liveness", "3", "--grace-s", "20",
                 "--log-level", "debug"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def received(self) -> Counter[str]:
        """How often each task id reached a runner, over every runner's log."""
        seen: Counter[str] = Counter()
        for path in self.tmp.glob("runner-*.log"):
            for match in re.finditer(r"task [0-9a-f]+:(\S+) received", path.read_text("utf-8",
                                                                                      "replace")):
                seen[match.group(1)] += 1
        return seen

    # -- the network -------------------------------------------------------------------------

    def cut(self, ns: str) -> None:
        """Drop everything in and out of ``ns`` (a partition: no reset, no error, silence)."""
        for chain in ("INPUT", "OUTPUT"):
            _run("ip", "netns", "exec", ns, "iptables", "-I", chain, "-j", "DROP")

    def mend(self, ns: str) -> None:
        for chain in ("INPUT", "OUTPUT"):
            _run("ip", "netns", "exec", ns, "iptables", "-D", chain, "-j", "DROP")

    def lose(self, ns: str, probability: float) -> None:
        """Drop that share of the packets in and out of ``ns``, at random."""
        for chain in ("INPUT", "OUTPUT"):
            _run("ip", "netns", "exec", ns, "iptables", "-I", chain, "-m", "statistic",
                 "--mode", "random", "--probability", str(probability), "-j", "DROP")

    def delay(self, target_port: int, delay_s: float) -> int:
        """A proxy on the hub that delays each direction by ``delay_s``; its port."""
        proxy = DelayProxy(self.hub, (self.hub, target_port), delay_s)
        self.proxies.append(proxy)
        return proxy.port

    # -- the broker's view -------------------------------------------------------------------

    @staticmethod
    def health(http_port: int) -> dict[str, object] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz",
                                        timeout=1) as resp:
                body: dict[str, object] = json.load(resp)
                return body
        except OSError as exc:
            body_of = getattr(exc, "read", None)
            if body_of is not None:
                try:
                    return dict(json.loads(body_of()))
                except (ValueError, OSError):
                    return None
            return None

    @staticmethod
    def metric(http_port: int, name: str, labels: str = "") -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and labels in line and not line.startswith("#"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def wait_runners(self, http_port: int, count: int, timeout_s: float) -> float:
        """Seconds until the broker has ``count`` runners; AssertionError past the bound."""
        start = time.monotonic()
        while time.monotonic() - start < timeout_s:
            health = self.health(http_port)
            if health is not None and health.get("runners") == count:
                return time.monotonic() - start
            time.sleep(0.02)
        raise AssertionError(f"{count} runner(s) not registered within {timeout_s} s: "
                             f"{self.health(http_port)}")

    # -- cleanup -----------------------------------------------------------------------------

    def close(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for proxy in self.proxies:
            proxy.close()
        for ns in self.namespaces:  # its rules and its end of the veth go with it
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for link in self.links:
            subprocess.run(["ip", "link", "del", link], capture_output=True)
        self.namespaces, self.links, self.procs, self.proxies = [], [], [], []


def leftovers(tag: str) -> list[str]:
    """Namespaces and links of this process still there (a cleanup that failed)."""
    found = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return [line for line in (found + links).splitlines()
            if f"sbx-{tag}-" in line or f"sbx{tag}h" in line or f"sbxbr{tag}" in line]


class DelayProxy:
    """A TCP proxy that holds every chunk ``delay_s`` before passing it on, each direction in
    order (a link with that much latency one way; no netem in this kernel)."""

    def __init__(self, host: str, target: tuple[str, int], delay_s: float) -> None:
        self.target, self.delay_s = target, delay_s
        self.listener = socket.create_server((host, 0))
        self.port = int(self.listener.getsockname()[1])
        self.closed = False
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                conn.close()
                continue
            upstream.settimeout(None)
            for s in (conn, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.conns += [conn, upstream]
            for src, dst in ((conn, upstream), (upstream, conn)):
                pipe: queue.Queue[tuple[float, bytes]] = queue.Queue()
                threading.Thread(target=self._read, args=(src, pipe), daemon=True).start()
                threading.Thread(target=self._write, args=(dst, pipe), daemon=True).start()

    def _read(self, src: socket.socket, pipe: queue.Queue[tuple[float, bytes]]) -> None:
        while True:
            try:
                chunk = src.recv(65536)
            except OSError:
                chunk = b""
            pipe.put((time.monotonic() + self.delay_s, chunk))
            if not chunk:
                return

    def _write(self, dst: socket.socket, pipe: queue.Queue[tuple[float, bytes]]) -> None:
        while True:
            due, chunk = pipe.get()
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if not chunk:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            try:
                dst.sendall(chunk)
            except OSError:
                return

    def close(self) -> None:
        self.closed = True
        self.listener.close()
        for conn in self.conns:
            try:
                conn.close()
            except OSError:
                pass
