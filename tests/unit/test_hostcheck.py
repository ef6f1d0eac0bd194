"""What `sandbox runtimes` and a failed `sandbox exec` say about this host (sandbox.service.hostcheck)."""

from __future__ import annotations

from sandbox.service import hostcheck
from sandbox.jail import launch, namespaces
from sandbox.config import PoolConfig
from sandbox.errors import JailError


def _no_cgroup(config: PoolConfig) -> None:
    raise JailError("cannot set up the jail's cgroup: /sys/fs/cgroup/x is not writable by this "
                    "user (uid 65534); do this")


def test_a_cgroup_layer_this_user_cannot_set_up_is_why_no_runtime_can_run(monkeypatch):
    """As nobody, `sandbox exec` said `python: works` beside the error that the python jail
    could not start for want of a writable cgroup."""
    monkeypatch.setattr(launch, "locate_nsjail", lambda path=None: "/bin/nsjail")
    monkeypatch.setattr(launch, "cgroup_plan", _no_cgroup)
    monkeypatch.setattr(namespaces, "denied", lambda: "")
    monkeypatch.setattr(hostcheck, "_installed", lambda runtime, config: "")
    verdicts = hostcheck.runtimes(PoolConfig())
    assert [(v.runtime, v.works, v.why) for v in verdicts] == [
        (name, False, "cannot set up the jail's cgroup: /sys/fs/cgroup/x is not writable by "
                      "this user (uid 65534); do this")
        for name in ("python", "javascript", "pyodide")]


def test_with_the_cgroup_layer_off_the_cgroup_is_not_asked_about(monkeypatch):
    def asked(config: PoolConfig) -> None:
        raise AssertionError("the cgroup plan was asked for with the layer off")

    monkeypatch.setattr(launch, "locate_nsjail", lambda path=None: "/bin/nsjail")
    monkeypatch.setattr(launch, "cgroup_plan", asked)
    monkeypatch.setattr(namespaces, "denied", lambda: "")
    monkeypatch.setattr(hostcheck, "_installed", lambda runtime, config: "")
    assert all(v.works for v in hostcheck.runtimes(PoolConfig(cgroup="off")))

