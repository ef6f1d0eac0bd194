"""``sandbox exec --return-files DIR``: what a task returned lands under DIR and nowhere else."""

from __future__ import annotations

import os

from sandbox.service.returned import write_under


def test_files_land_under_the_directory_by_their_names(tmp_path):
    refused = write_under(str(tmp_path / "out"), {"a.txt": b"1", "d/e/b.bin": b"\x00"})
    assert (refused, (tmp_path / "out/a.txt").read_bytes(),
            (tmp_path / "out/d/e/b.bin").read_bytes()) == ({}, b"1", b"\x00")


def test_cant_write_a_file_named_outside_the_directory(tmp_path):
    refused = write_under(str(tmp_path / "out"), {"../x": b"1", "/tmp/x": b"1", "a/../../x": b"1",
                                                 "a\x00b": b"1"})
    assert (sorted(refused), os.listdir(tmp_path)) == (
        ["../x", "/tmp/x", "a\x00b", "a/../../x"], ["out"])


def test_cant_write_through_a_link_in_the_directory(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "via").symlink_to(outside)
    (out / "file").symlink_to(outside / "target")
    refused = write_under(str(out), {"via/x": b"1", "file": b"2"})
    assert (sorted(refused), os.listdir(outside)) == (["file", "via/x"], [])


def test_a_file_of_the_same_name_is_replaced(tmp_path):
    (tmp_path / "a").write_bytes(b"old")
    write_under(str(tmp_path), {"a": b"new"})
    assert (tmp_path / "a").read_bytes() == b"new"
