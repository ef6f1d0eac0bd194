"""V8's words and n8n's ExecutionError shape for errors QuickJS raised (sandbox.n8n.v8_errors):
expected values are what Node 20 and n8n 2.41's runner give for the same code."""

from __future__ import annotations

import pytest

from runtimes.javascript.v8_words import v8_message, v8_syntax_message
from sandbox.n8n.v8_errors import execution_error


@pytest.mark.parametrize("message,line,where,expected", [
    ("not a function", "return a.b.split(',')", 12, "a.b.split is not a function"),
    ("not a function", "x.map(v => v).filter2(v => v)", 23, "x.map(...).filter2 is not a function"),
    ("not a function", "a['b'].zz()", 8, "a.b.zz is not a function"),
    ("not a function", "a[i].zz()", 6, "a[i].zz is not a function"),
    ("not a function", "(await p).foo()", 11, "(intermediate value).foo is not a function"),
    ("not a function", "f()", 1, "f is not a function"),
    ("not a constructor", "new o.X()", 5, "o.X is not a constructor"),
    ("value is not iterable", "for (const k of o.list) {}", 17, "o.list is not iterable"),
    ("cannot read property 'x' of undefined", "a.b.x", 1,
     "Cannot read properties of undefined (reading 'x')"),
    ("cannot set property 'x' of null", "a.x = 1", 1, "Cannot set properties of null (setting 'x')"),
    ("q is not initialized", "let q = q + 1", 9, "Cannot access 'q' before initialization"),
    ("'a' is read-only", "a = 2", 1, "Assignment to constant variable."),
])
def test_quickjs_messages_in_v8s_words(message, line, where, expected):
    assert v8_message("TypeError", message, line, (1, where)) == expected


def test_a_message_with_colons_is_kept_whole_as_n8n_2_41_splits_at_the_first_colon():
    # n8n 2.41.1's ExecutionError matches /^(\S.*?): (.+)$/: type "Error", details the rest
    info = {"kind": "error", "name": "Error", "message": "Request failed: 404",
            "frames": [["VmCodeWrapper", 3, 7]]}
    err = execution_error(info, "a\nb\nc", 3)
    assert (err["message"], err["description"], err["lineNumber"]) == (
        "Request failed: 404 [line 3]", None, 3)


def test_the_line_is_the_innermost_named_user_functions():
    info = {"kind": "error", "name": "TypeError", "message": "boom",
            "frames": [["<anonymous>", 5, 1], ["check", 2, 3], ["VmCodeWrapper", 6, 1], ["main", 300, 1]]}
    assert execution_error(info, "\n" * 9, 10)["lineNumber"] == 2


def test_a_thrown_value_that_is_not_error_like_reads_as_its_json():
    assert execution_error({"kind": "value", "text": "\"just a string\""}, "throw 'x'", 1) == {
        "message": '"just a string"', "description": None, "stack": ""}


def test_a_thrown_value_json_cannot_write_is_unknown():
    assert execution_error({"kind": "value", "text": None}, "throw undefined", 1) == {
        "message": "Unknown error", "description": None, "stack": ""}


def test_a_thrown_object_with_a_message_shows_that_message():
    err = execution_error({"kind": "errorlike", "message": "object thrown", "stack": None},
                          "throw {message: 'object thrown'}", 1)
    assert err["message"] == "object thrown"


# -- QuickJS's words in V8's, from the native function that raised them or the source line --

@pytest.mark.parametrize("name,message,line,where,native,expected", [
    ("RangeError", "invalid number of digits", "x.toFixed(200)", None, "toFixed",
     "toFixed() digits argument must be between 0 and 100"),
    ("TypeError", "circular reference", "JSON.stringify(a)", None, "stringify",
     "Converting circular structure to JSON"),
    ("URIError", "expecting hex digit", "decodeURIComponent('%')", None, "decodeURIComponent",
     "URI malformed"),
    ("TypeError", "cannot convert BigInt to number", "1n + 1", (1, 1), None,
     "Cannot mix BigInt and other types, use explicit conversions"),
    ("TypeError", "cannot convert BigInt to number", "Math.max(1n)", None, "max",
     "Cannot convert a BigInt value to a number"),
    ("TypeError", "'a' is read-only", "o.a = 2;", (1, 1), None,
     "Cannot assign to read only property 'a' of object '#<Object>'"),
    ("TypeError", "'c' is read-only", "c = 2;", (1, 1), None, "Assignment to constant variable."),
    ("TypeError", "invalid 'in' operand", "'a' in 'abc'", (1, 5), None,
     "Cannot use 'in' operator to search for 'a' in abc"),
    ("TypeError", "cannot read property 'Symbol.iterator' of undefined",
     "const [a, b] = undefined;", (1, 1), None, "undefined is not iterable"),
    ("TypeError", "not a function", "  fns['run']();", (1, 3), None, "fns.run is not a function"),
    ("RangeError", "Date value is NaN", "d.toISOString()", None, "toISOString", "Invalid time value"),
    ("SyntaxError", "expecting ')'", "  new RegExp('(');", (1, 3), "RegExp",
     "Invalid regular expression: /(/: Unterminated group"),
    # QuickJS puts a destructuring's error at the function's start: the code's only one
    ("TypeError", "value is not iterable", "try {\n  const [x] = 5;\n}", (1, 1), None,
     "5 is not iterable"),
    ("TypeError", "Cannot convert undefined or null to object", "try {\n  const { a } = null;\n}",
     (1, 1), None, "Cannot destructure property 'a' of 'null' as it is null."),
])
def test_quickjs_words_become_v8s(name, message, line, where, native, expected):
    assert v8_message(name, message, line, where, native) == expected


@pytest.mark.parametrize("message,line,expected", [
    ("unexpected token in expression: ';'", "const a = ;", "Unexpected token ';'"),
    ("expecting ';'", "function f() { await 1; }",
     "await is only valid in async functions and the top level bodies of modules"),
    ("Unexpected token ']'", "return [{a: 1 ];", "Unexpected token ']'"),
])
def test_parse_errors_in_v8s_words(message, line, expected):
    assert v8_syntax_message(message, line) == expected


def test_a_stack_overflow_without_frames_names_the_recursive_call():
    info = {"kind": "error", "name": "RangeError", "message": "Maximum call stack size exceeded",
            "frames": []}
    code = "const x = 1;\nfunction f(n) {\n  return f(n + 1);\n}\nreturn f(0);"
    assert execution_error(info, code, 5)["message"] == "Maximum call stack size exceeded [line 3]"
