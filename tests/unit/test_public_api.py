"""What a host app's developer reaches for (issue [25.5]): CURVE keys by directory, the same
``result()`` on both clients' handles, a Result that raises on demand and serializes to JSON."""

from __future__ import annotations

import asyncio
import base64
import json
import math

import pytest
import zmq.auth

from sandbox import ConfigError, Result, Status, TaskFailed
from sandbox.client import AsyncClient, Client, CurveClient
from sandbox.client.fakes import FakeBroker


def test_a_tcp_client_takes_its_keys_by_directory_and_name(tmp_path):
    """`Client("tcp://...", curve_dir=..., key=...)` raised TypeError: keys could only be given
    through sandbox.link.CurveClient, neither exported nor documented."""
    for name in ("server", "app"):
        zmq.auth.create_certificates(str(tmp_path), name)
    with Client("tcp://127.0.0.1:9", curve_dir=str(tmp_path), key="app") as client:
        assert client.endpoint == "tcp://127.0.0.1:9"
    public, _ = zmq.auth.load_certificate(str(tmp_path / "app.key"))
    assert CurveClient.load(str(tmp_path), "app").public_key == public


def test_a_missing_key_file_is_named(tmp_path):
    zmq.auth.create_certificates(str(tmp_path), "server")
    with pytest.raises(ConfigError, match="nobody.key_secret"):
        Client("tcp://127.0.0.1:9", curve_dir=str(tmp_path), key="nobody")


def test_raise_for_status_returns_an_ok_result_and_raises_the_rest():
    ok = Result(Status.OK, "ok", value=1)
    assert ok.raise_for_status() is ok
    failed = Result(Status.TIMEOUT, "exceeded the wall-clock timeout of 1 s")
    with pytest.raises(TaskFailed, match="^timeout: exceeded the wall-clock timeout of 1 s$") as info:
        failed.raise_for_status()
    assert info.value.result is failed


def test_to_dict_is_json_whatever_the_value_holds():
    """A web endpoint returning `r.value` of b'\\x00\\xff' failed: the tagged JSON view existed
    but was internal."""
    r = Result(Status.OK, "ok", value={"b": b"\x00\xff", "n": math.nan, "big": 2**70})
    view = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert view["result"] == {"b": {"$bytes": base64.b64encode(b"\x00\xff").decode()},
                              "n": {"$float": "NaN"}, "big": {"$int": str(2**70)}}
    assert (view["status"], view["message"], view["error"]) == ("ok", "ok", None)


def test_an_async_handle_has_result_as_the_threaded_one_does(tmp_path):
    async def main() -> Result:
        with FakeBroker(f"ipc://{tmp_path}/b.sock") as broker:
            async with AsyncClient(broker.endpoint) as client:
                handle = await client.submit("python", "return 1")
                return await handle.result(timeout=10)

    assert asyncio.run(main()).status is Status.OK


