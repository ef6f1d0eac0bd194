// A module of globals.js, compiled on a task's first use of what it defines (see the
// loader there): JSON.parse's messages in V8's words.
// One function expression: it takes the loader's helpers and returns what it defines.
(function (h) {
  "use strict";
  const { define, isArray, fromCharCode, nativeParse, DOMException } = h;
  // -- JSON.parse in V8's words ------------------------------------------------------------
  // QuickJS's own parser decides; only when it refuses is the text scanned again to say
  // where and why as V8 (Node 20) says it.
  function jsonError(src) {
    const WS = " \t\n\r";
    let p = 0;
    const fail = (at, message) => { throw { at, message }; };
    const ws = () => { while (p < src.length && WS.includes(src[p])) p++; };
    function string() {
      p++;
      for (;;) {
        if (p >= src.length) fail(-1, "Unterminated string in JSON at position " + p);
        const c = src.charCodeAt(p);
        if (c === 34) { p++; return; }
        if (c < 0x20) fail(-1, "Bad control character in string literal in JSON at position " + p);
        if (c === 92) {
          const e = src[p + 1];
          if (e === "u") {
            for (let k = 2; k < 6; k++) {
              if (!/[0-9a-fA-F]/.test(src[p + k] || "")) fail(-1, "Bad Unicode escape in JSON at position " + (p + k));
            }
            p += 6;
            continue;
          }
          if (e === undefined || !"\"\\/bfnrt".includes(e)) fail(-1, "Bad escaped character in JSON at position " + (p + 1));
          p += 2;
          continue;
        }
        p++;
      }
    }
    function number() {
      if (src[p] === "-") {
        p++;
        if (!/[0-9]/.test(src[p] || "")) fail(-1, "No number after minus sign in JSON at position " + p);
      }
      if (src[p] === "0") {
        p++;
        if (/[0-9]/.test(src[p] || "")) fail(p);
      } else while (/[0-9]/.test(src[p] || "")) p++;
      if (src[p] === ".") {
        p++;
        if (!/[0-9]/.test(src[p] || "")) fail(-1, "Unterminated fractional number in JSON at position " + p);
        while (/[0-9]/.test(src[p] || "")) p++;
      }
      if (src[p] === "e" || src[p] === "E") {
        p++;
        if (src[p] === "+" || src[p] === "-") p++;
        if (!/[0-9]/.test(src[p] || "")) fail(-1, "Exponent part is missing a number in JSON at position " + p);
        while (/[0-9]/.test(src[p] || "")) p++;
      }
    }
    function literal(word) {
      for (let k = 0; k < word.length; k++, p++) if (src[p] !== word[k]) fail(p);
    }
    function value() {
      ws();
      const c = src[p];
      if (c === "\"") return string();
      if (c === "-" || (c >= "0" && c <= "9")) return number();
      if (c === "t") return literal("true");
      if (c === "f") return literal("false");
      if (c === "n") return literal("null");
      if (c === "[") {
        p++; ws();
        if (src[p] === "]") { p++; return; }
        for (;;) {
          value(); ws();
          if (src[p] === ",") { p++; continue; }
          if (src[p] === "]") { p++; return; }
          fail(p, "Expected ',' or ']' after array element");
        }
      }
      if (c === "{") {
        p++; ws();
        if (src[p] === "}") { p++; return; }
        if (src[p] !== "\"") fail(p, "Expected property name or '}'");
        for (;;) {
          string(); ws();
          if (src[p] !== ":") fail(p, "Expected ':' after property name");
          p++;
          value(); ws();
          if (src[p] === ",") {
            p++; ws();
            if (src[p] !== "\"") fail(p, "Expected double-quoted property name");
            continue;
          }
          if (src[p] === "}") { p++; return; }
          fail(p, "Expected ',' or '}' after property value");
        }
      }
      fail(p);
    }
    // Node 24's V8 follows a position with its line and column
    function located(message) {
      const m = / at position (\d+)$/.exec(message);
      if (!m) return message;
      const at = Number(m[1]), before = src.slice(0, at), nl = before.lastIndexOf("\n");
      const line = before.split("\n").length;
      return message + " (line " + line + " column " + (at - nl) + ")";
    }
    try {
      value(); ws();
      if (p < src.length) fail(-1, "Unexpected non-whitespace character after JSON at position " + p);
      return null;
    } catch (e) {
      if (e.at === -1) return located(e.message);
      const at = e.at;
      if (e.message) return located(e.message + " in JSON at position " + at);
      if (at >= src.length) return "Unexpected end of JSON input";
      const c = src[at];
      if (c === "-" || (c >= "0" && c <= "9")) return located("Unexpected number in JSON at position " + at);
      if (c === "\"") return located("Unexpected string in JSON at position " + at);
      if (src === "NaN" || src === "Infinity" || src === "undefined" || src === "[object Object]") {
        return "\"" + src + "\" is not valid JSON";
      }
      let context;
      if (src.length < 21) context = "\"" + src + "\"";
      else if (at < 10) context = "\"" + src.slice(0, at + 10) + "\"...";
      else if (at < src.length - 10) context = "...\"" + src.slice(at - 10, at + 10) + "\"...";
      else context = "...\"" + src.slice(at - 10) + "\"";
      return "Unexpected token '" + c + "', " + context + " is not valid JSON";
    }
  }
  return { jsonError };
})
