"""CommonJS resolution of npm packages (runtimes/javascript/npm.py) over a file system given
as a dictionary: what require() loads, and that nothing outside the mounted root is ever it."""

from __future__ import annotations

import json

import pytest

from runtimes.javascript import npm

R = "/sandbox/npm"
NM = f"{R}/node_modules"
FILES = {
    f"{NM}/plain/index.js": "",
    f"{NM}/main-file/package.json": json.dumps({"main": "lib/entry"}),
    f"{NM}/main-file/lib/entry.js": "",
    f"{NM}/main-dir/package.json": json.dumps({"main": "./dist"}),
    f"{NM}/main-dir/dist/index.js": "",
    f"{NM}/bad-json/package.json": "{not json",
    f"{NM}/bad-json/index.js": "",
    f"{NM}/exp/package.json": json.dumps({"main": "old.js", "exports": {
        ".": {"import": "./esm.mjs", "require": "./cjs.js"},
        "./feature": {"node": {"require": "./feature-node.js"}, "default": "./feature.js"}}}),
    f"{NM}/exp/old.js": "", f"{NM}/exp/cjs.js": "", f"{NM}/exp/feature-node.js": "",
    f"{NM}/exp/feature.js": "",
    f"{NM}/exp-string/package.json": json.dumps({"exports": "./only.js"}),
    f"{NM}/exp-string/only.js": "",
    f"{NM}/@scope/pkg/index.js": "",
    f"{NM}/@scope/pkg/sub/deep.js": "",
    f"{NM}/lodash/package.json": json.dumps({"main": "lodash.js"}),
    f"{NM}/lodash/lodash.js": "",
    f"{NM}/lodash/fp.js": "",
    f"{NM}/lodash/data.json": "{}",
    f"{NM}/outer/index.js": "",
    f"{NM}/outer/node_modules/inner/index.js": "",
    f"{NM}/inner/index.js": "",
    "/etc/passwd": "",
    "/sandbox/node_modules/escaped/index.js": "",
}


def resolve(request: str, from_dir: str = R) -> str | None:
    return npm.resolve(request, from_dir, FILES.__contains__, FILES.get)


@pytest.mark.parametrize(("request_", "expected"), [
    ("plain", f"{NM}/plain/index.js"),
    ("main-file", f"{NM}/main-file/lib/entry.js"),
    ("main-dir", f"{NM}/main-dir/dist/index.js"),
    ("bad-json", f"{NM}/bad-json/index.js"),
    ("exp", f"{NM}/exp/cjs.js"),
    ("exp/feature", f"{NM}/exp/feature-node.js"),
    ("exp-string", f"{NM}/exp-string/only.js"),
    ("@scope/pkg", f"{NM}/@scope/pkg/index.js"),
    ("@scope/pkg/sub/deep", f"{NM}/@scope/pkg/sub/deep.js"),
    ("lodash", f"{NM}/lodash/lodash.js"),
    ("lodash/fp", f"{NM}/lodash/fp.js"),
    ("lodash/data.json", f"{NM}/lodash/data.json"),
])
def test_a_bare_name_resolves_as_node_does(request_, expected):
    assert resolve(request_) == expected


def test_an_exports_map_hides_paths_it_does_not_list():
    assert resolve("exp/old") is None


@pytest.mark.parametrize(("request_", "expected"), [
    ("./fp", f"{NM}/lodash/fp.js"),
    ("./data.json", f"{NM}/lodash/data.json"),
    ("./lodash", f"{NM}/lodash/lodash.js"),
    ("../plain", f"{NM}/plain/index.js"),
    (".", f"{NM}/lodash/lodash.js"),
])
def test_a_relative_request_resolves_from_the_requiring_module(request_, expected):
    assert resolve(request_, f"{NM}/lodash") == expected


def test_a_nested_dependency_wins_over_the_top_level_one():
    assert resolve("inner", f"{NM}/outer") == f"{NM}/outer/node_modules/inner/index.js"
    assert resolve("inner", f"{NM}/plain") == f"{NM}/inner/index.js"


@pytest.mark.parametrize("request_", [
    "../../../etc/passwd", "/etc/passwd", "../../node_modules/escaped", "escaped",
    "..", "../x/../../..", "", "plain\0", "./", "missing", "@scope", "lodash/../../../etc/passwd",
])
def test_nothing_outside_the_mounted_root_is_ever_resolved(request_):
    found = resolve(request_, f"{NM}/lodash")
    assert found is None or found.startswith(NM + "/"), found


def test_a_path_out_of_the_root_resolves_to_none():
    assert resolve("../../../etc/passwd", f"{NM}/lodash") is None
    assert resolve("/etc/passwd") is None
    assert resolve("escaped", R) is None


def test_split_name_keeps_a_scope_with_its_package():
    assert npm.split_name("@a/b/c/d") == ("@a/b", "./c/d")
    assert npm.split_name("lodash") == ("lodash", ".")


def test_host_read_refuses_a_path_outside_the_root():
    assert npm.host_read("/etc/passwd") is None
    assert npm.host_read(f"{R}/../../etc/passwd") is None
    assert npm.host_read(7) is None
