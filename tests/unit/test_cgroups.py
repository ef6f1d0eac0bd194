"""Cgroup detection and planning: pure, from text fixtures of both hierarchies."""

from __future__ import annotations

from sandbox.jail import cgroups

V1_MOUNTINFO = """\
30 23 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
35 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 30 0:32 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
37 30 0:33 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
"""
V1_SELF = "8:pids:/\n4:memory:/process_api/abc\n0::/\n"

V2_MOUNTINFO = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
V2_SELF = "0::/user.slice/user-1000.slice/session-2.scope\n"


def test_detects_v1_with_own_memory_cgroup():
    layout = cgroups.detect(V1_MOUNTINFO, V1_SELF)
    assert layout == cgroups.Layout(
        version=1,
        memory_mount="/sys/fs/cgroup/memory",
        pids_mount="/sys/fs/cgroup/pids",
        memory_path="/process_api/abc",
        pids_path="/",
    )


def test_detects_v2():
    layout = cgroups.detect(V2_MOUNTINFO, V2_SELF)
    assert layout is not None and layout.version == 2
    assert layout.unified_mount == "/sys/fs/cgroup"
    assert layout.unified_path == "/user.slice/user-1000.slice/session-2.scope"


def test_detects_nothing_without_cgroup_mounts():
    assert cgroups.detect("1 0 0:1 / / rw - ext4 /dev/vda rw\n", "0::/\n") is None


def test_v1_plan_nests_under_own_cgroup():
    p = cgroups.plan(cgroups.detect(V1_MOUNTINFO, V1_SELF), memory_bytes=1 << 30, pids=64)
    assert p.dirs == (
        "/sys/fs/cgroup/memory/process_api/abc/snippet-sandbox",
        "/sys/fs/cgroup/pids/snippet-sandbox",
    )
    args = list(p.nsjail_args)
    assert args[args.index("--cgroup_mem_max") + 1] == str(1 << 30)
    assert args[args.index("--cgroup_pids_max") + 1] == "64"
    assert args[args.index("--cgroup_mem_parent") + 1] == "process_api/abc/snippet-sandbox"
    assert args[args.index("--cgroup_pids_parent") + 1] == "snippet-sandbox"
    assert "--use_cgroupv2" not in args


def test_v2_plan_uses_delegated_subtree():
    p = cgroups.plan(cgroups.detect(V2_MOUNTINFO, V2_SELF), memory_bytes=1 << 30, pids=64)
    parent = "/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope/snippet-sandbox"
    assert p.dirs == (parent,)
    assert p.v2_base == "/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope"
    args = list(p.nsjail_args)
    assert "--use_cgroupv2" in args
    assert args[args.index("--cgroupv2_mount") + 1] == parent


def test_v2_plan_honours_configured_root():
    p = cgroups.plan(
        cgroups.detect(V2_MOUNTINFO, V2_SELF), memory_bytes=1, pids=8, root="/sys/fs/cgroup/mine"
    )
    assert p.dirs == ("/sys/fs/cgroup/mine/snippet-sandbox",)


# -- unprivileged use: what failed and what to do (issue 14, item 5) ----------------------------


def test_a_parent_cgroup_this_user_may_not_write_is_named_with_what_to_do(tmp_path, monkeypatch):
    """[14.5] As a non-root user nsjail failed with `mkdir('.../NSJAIL.N') failed:
    Permission denied` and no hint: a parent cgroup root had made earlier existed, so
    creating it succeeded, and nothing checked it was ours."""
    import os

    import pytest

    from sandbox.errors import JailError

    parent = tmp_path / "memory" / "snippet-sandbox"
    parent.mkdir(parents=True)
    plan = cgroups.Plan(version=1, dirs=(str(parent),))
    monkeypatch.setattr(os, "access", lambda path, mode: str(path) != str(parent))
    with pytest.raises(JailError) as info:
        cgroups.prepare(plan)
    assert str(info.value) == (
        f"cannot set up the jail's cgroup: {parent} is not writable by this user (uid "
        f"{os.geteuid()}); run as root, give a cgroup delegated to this user with cgroup_root "
        "(--cgroup-root, SANDBOX_CGROUP_ROOT), or run without this layer with cgroup off "
        "(--cgroup off, SANDBOX_CGROUP=off): the jails then have no memory or pids cap of "
        "their own, each task keeps its own limits (see the README)")


def test_check_looks_at_the_nearest_directory_that_exists(tmp_path, monkeypatch):
    import os

    missing = tmp_path / "a" / "b" / "snippet-sandbox"
    seen: list[str] = []
    monkeypatch.setattr(os, "access", lambda path, mode: seen.append(str(path)) or True)
    cgroups.check(cgroups.Plan(version=2, dirs=(str(missing),)))
    assert seen == [str(tmp_path)]


def test_a_delegated_root_is_used_on_v1_in_both_hierarchies_and_on_v2_as_given():
    v1 = cgroups.plan(cgroups.detect(V1_MOUNTINFO, V1_SELF), memory_bytes=1 << 30, pids=64,
                      root="/sbx")
    assert v1.dirs == ("/sys/fs/cgroup/memory/sbx/snippet-sandbox",
                       "/sys/fs/cgroup/pids/sbx/snippet-sandbox")
    layout = cgroups.detect(V2_MOUNTINFO, V2_SELF)
    full = cgroups.plan(layout, memory_bytes=1 << 30, pids=64, root="/sys/fs/cgroup/app.slice")
    within = cgroups.plan(layout, memory_bytes=1 << 30, pids=64, root="/app.slice")
    assert full.dirs == within.dirs == ("/sys/fs/cgroup/app.slice/snippet-sandbox",)


def test_no_cgroup_hierarchy_names_the_likely_cause_and_the_ways_out(monkeypatch):
    """A runner started under `ip netns exec` (which remounts /sys) failed with 'no cgroup v1
    memory+pids or cgroup v2 hierarchy is mounted', naming neither the cause nor a fix."""
    import pytest

    from sandbox.config import PoolConfig
    from sandbox.errors import JailError
    from sandbox.jail import launch

    monkeypatch.setattr(launch, "_cgroup_layout", lambda: None)
    with pytest.raises(JailError) as info:
        launch.cgroup_plan(PoolConfig(cgroup="auto"))
    message = str(info.value)
    assert message == launch.NO_CGROUPS
    assert "ip netns exec" in message and "nsenter --net" in message and "--cgroup off" in message
