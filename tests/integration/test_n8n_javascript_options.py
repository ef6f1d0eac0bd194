"""n8n's optional JavaScript Code node features, in real jails without n8n: ``require()``
under NODE_FUNCTION_ALLOW_BUILTIN (crypto, buffer, url), luxon with ``$now``/``$today`` in
GENERIC_TIMEZONE (or the workflow's own zone), and ``$jmespath``. Each expected value is what
n8n 2.41.1's runner gives (Node's crypto, luxon 3.7.2, jmespath 0.16.0), or Python's hashlib
for the same bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from sandbox import PoolConfig
from sandbox.config import Limits
from sandbox.n8n import javascript_node
from sandbox.n8n import protocol as p
from sandbox.n8n.javascript_node import CodeOptions
from sandbox.n8n.task import Finished
from tests.n8n import captures
from tests.n8n.jobs import Jobs

pytestmark = pytest.mark.jail

LIMITS = Limits(timeout_s=10.0, memory_mb=128)
CRYPTO = CodeOptions(allow_builtin=("crypto",), timezone="Europe/Berlin")


@pytest.fixture(scope="module")
def sb():
    with Jobs(PoolConfig(size=2), runtimes=("javascript",)) as box:
        yield box


def run_js(sb, code, options=CRYPTO, workflow_zone=None) -> Finished:
    s = p.Settings(code=code, node_mode="runOnceForAllItems", workflow_mode="manual",
                   continue_on_fail=False)
    data = json.loads(json.dumps(
        next(m for m in captures.messages("07") if m["type"] == "broker:taskdataresponse")["data"]))
    data["inputData"] = {"main": [[{"json": {"x": 1}, "pairedItem": {"item": 0}}]]}
    if workflow_zone is not None:
        data["workflow"]["settings"] = {"timezone": workflow_zone}
    job = javascript_node.job(s, data, LIMITS, options=options)
    return javascript_node.finish(s, sb.run(job), LIMITS)


def value(done: Finished):
    assert done.error is None, done.error
    assert done.done is not None
    return done.done["result"][0]["json"]["v"]


# -- require() -------------------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha256", "sha512"])
def test_require_crypto_hashes_as_node_does(sb, algorithm):
    code = (f"const c = require('crypto');\n"
            f"return [{{json: {{v: c.createHash('{algorithm}').update('héllo').digest('hex')}}}}];")
    assert value(run_js(sb, code)) == hashlib.new(algorithm, "héllo".encode()).hexdigest()


def test_require_crypto_hmac_in_base64(sb):
    code = ("const c = require('crypto');\n"
            "return [{json: {v: c.createHmac('sha256', 'key').update('msg').digest('base64')}}];")
    import base64
    expected = base64.b64encode(hmac.new(b"key", b"msg", "sha256").digest()).decode()
    assert value(run_js(sb, code)) == expected


def test_require_crypto_random_bytes_and_uuid(sb):
    code = ("const c = require('crypto');\n"
            "return [{json: {v: [c.randomBytes(16).length, /^[0-9a-f-]{36}$/.test(c.randomUUID())]}}];")
    assert value(run_js(sb, code)) == [16, True]


def test_require_of_a_module_not_allowed_is_refused_as_n8n_words_it(sb):
    err = run_js(sb, "const fs = require('fs');\nreturn [];").error
    assert err is not None and err["message"] == "Module 'fs' is disallowed [line 1]"


def test_require_crypto_without_the_allow_list_is_refused(sb):
    err = run_js(sb, "\nrequire('crypto');\nreturn [];", options=CodeOptions()).error
    assert err is not None and err["message"] == "Module 'crypto' is disallowed [line 2]"


def test_an_allowed_module_this_runner_lacks_names_itself(sb):
    err = run_js(sb, "require('zlib');\nreturn [];",
                 options=CodeOptions(allow_builtin=("*",))).error
    assert err is not None and err["message"].startswith(
        "require('zlib') is not available in this runner (snippet-sandbox)")


def test_a_crypto_function_this_runner_lacks_names_itself(sb):
    err = run_js(sb, "require('crypto').createCipheriv('aes-128-cbc');\nreturn [];").error
    assert err is not None and err["message"].startswith(
        "crypto.createCipheriv is not available in this runner (snippet-sandbox)")


# -- luxon and the time zone -----------------------------------------------------------------

def test_now_is_a_luxon_datetime_in_generic_timezone(sb):
    code = "return [{json: {v: [$now.zoneName, $today.hour, typeof $now.toISO]}}];"
    assert value(run_js(sb, code)) == ["Europe/Berlin", 0, "function"]


def test_the_workflows_own_time_zone_wins(sb):
    code = "return [{json: {v: DateTime.local().zoneName}}];"
    assert value(run_js(sb, code, workflow_zone="Asia/Tokyo")) == "Asia/Tokyo"


def test_luxon_zones_come_from_the_time_zone_database(sb):
    # summer and winter time in Berlin, and a zone of the southern hemisphere
    code = ("const d = DateTime.fromISO('2024-07-01T12:00:00Z');\n"
            "return [{json: {v: [d.setZone('Europe/Berlin').toISO(),\n"
            "  DateTime.fromISO('2024-01-01T12:00:00', {zone: 'Europe/Berlin'}).offset,\n"
            "  d.setZone('America/Sao_Paulo').toFormat('HH:mm ZZ')]}}];")
    assert value(run_js(sb, code)) == ["2024-07-01T14:00:00.000+02:00", 60, "09:00 -03:00"]


def test_an_unknown_zone_is_an_invalid_datetime_as_in_luxon(sb):
    code = "return [{json: {v: DateTime.now().setZone('Mars/Base').invalidReason}}];"
    assert value(run_js(sb, code)) == "unsupported zone"


def test_duration_and_interval(sb):
    code = ("const i = Interval.fromDateTimes(DateTime.fromISO('2024-01-01'), "
            "DateTime.fromISO('2024-03-01'));\n"
            "return [{json: {v: [i.length('days'), Duration.fromObject({hours: 2}).as('minutes')]}}];")
    assert value(run_js(sb, code)) == [60, 120]


# -- $jmespath -------------------------------------------------------------------------------

def test_jmespath_searches_as_n8n_does(sb):
    code = ("const d = {people: [{name: 'a', age: 30}, {name: 'b', age: 20}]};\n"
            "return [{json: {v: $jmespath(d, 'people[?age > `25`].name')}}];")
    assert value(run_js(sb, code)) == ["a"]


def test_tz_is_dates_local_time_zone_as_in_node(sb):
    # 2024-07-01T12:00Z is 14:00 in Berlin (summer time); GENERIC_TIMEZONE stays luxon's
    code = ("const d = new Date('2024-07-01T12:00:00Z');\n"
            "return [{json: {v: [d.getHours(), d.getTimezoneOffset(), d.toLocaleTimeString('en-GB'),\n"
            "  Intl.DateTimeFormat().resolvedOptions().timeZone, $now.zoneName]}}];")
    options = CodeOptions(tz="Europe/Berlin", timezone="Asia/Tokyo")
    assert value(run_js(sb, code, options=options)) == [14, -120, "14:00:00", "Europe/Berlin",
                                                         "Asia/Tokyo"]


def test_without_tz_dates_are_utc(sb):
    code = "return [{json: {v: new Date('2024-07-01T12:00:00Z').getHours()}}];"
    assert value(run_js(sb, code)) == 12
