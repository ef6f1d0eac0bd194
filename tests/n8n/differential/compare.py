"""Outcomes of one Code node, normalised so that two runners can be compared fairly, and the
report of a comparison. Pure: no n8n here, only what it recorded.

An outcome is ``{"status", "items", "error"}``:

- ``status``: ``ok``; ``error`` when the node failed (with "continue on fail" n8n's Code node
  turns the failure into items ``{json: {error: message}}``, one per failing item in each-item
  mode; a failure n8n itself caught is the node's ``error``); ``not-run`` when n8n never ran
  the node.
- ``items``: the node's output items, normalised (below); error items included, so that in
  each-item mode which items failed is compared too.
- ``error``: the first error's text, as the user sees it in the item (or the node's message).
- ``stopped`` (only for the cases that fail on n8n's own runner): the node's error when
  "continue on fail" is off, ``{"message", "description"}``, as a user sees it by default.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tests.n8n.differential.corpus import Case

# How items are normalised, and why so little: both sides' items are what one n8n recorded
# after its own executor took the runner's answer, so everything n8n adds (pairedItem where the
# runner wrote none: by index when a node returns as many items as it got, item 0 when it
# returns one, none otherwise; error items of "continue on fail"; the node error) is added
# alike on both sides. Measured on the corpus: items carry only json, binary, pairedItem and
# (when the code returned one) error, in the same shapes on both sides (pairedItem ``0`` stays
# ``0`` on both), and binary data stays inline with no storage id (n8n's default binary mode).
# So items are compared as recorded, keys and shapes included, with one exception: values that
# differ between any two runs of the same runner (a clock, a random id, an execution id),
# which a case names in its ``mask``.


def _mask(value: Any, keys: tuple[str, ...]) -> Any:
    """Replace the values of ``keys`` (at any depth) by their JSON type."""
    if isinstance(value, dict):
        return {k: (f"<{type(v).__name__}>" if k in keys else _mask(v, keys)) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v, keys) for v in value]
    return value


def normalise_item(item: Any, mask: tuple[str, ...] = ()) -> Any:
    return _mask(item, mask) if mask else item


def _is_error_item(item: Any) -> bool:
    json = item.get("json") if isinstance(item, dict) else None
    return isinstance(json, dict) and set(json) == {"error"} and isinstance(json["error"], str)


def outcome(raw: Mapping[str, Any], case: Case) -> dict[str, Any]:
    """The normalised outcome of a node from what ``run.node_result`` read of n8n."""
    if not raw["ran"]:
        return {"status": "not-run", "items": [], "error": None}
    items = [normalise_item(i, case.mask) for i in raw["items"]]
    node_error = raw.get("node_error")
    if node_error is not None:
        return {"status": "error", "items": items, "error": node_error.get("message")}
    errors = [i["json"]["error"] for i in items if _is_error_item(i)]
    if errors:
        return {"status": "error", "items": items, "error": errors[0]}
    return {"status": "ok", "items": items, "error": None}


def agree(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Strict agreement: same status, same items, same error text (and the same error, type
    included, where the node stops the workflow)."""
    return (a["status"] == b["status"] and a["items"] == b["items"] and a["error"] == b["error"]
            and a.get("stopped") == b.get("stopped"))


def what_differs(theirs: Mapping[str, Any], ours: Mapping[str, Any]) -> str:
    """One line saying how two outcomes differ, for a report or a failing assertion."""
    if theirs["status"] != ours["status"]:
        return (f"status: n8n {theirs['status']} ({theirs['error']!r}), "
                f"ours {ours['status']} ({ours['error']!r})")
    if theirs["error"] != ours["error"]:
        return f"error text: n8n {theirs['error']!r}, ours {ours['error']!r}"
    if theirs["items"] != ours["items"]:
        return f"items: n8n {_short(theirs['items'])}, ours {_short(ours['items'])}"
    return f"error without continue-on-fail: n8n {theirs.get('stopped')!r}, ours {ours.get('stopped')!r}"


def _short(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def verdict(case_id: str, theirs: Mapping[str, Any], ours: Mapping[str, Any],
            known: Mapping[str, tuple[str, str]]) -> str | None:
    """Why the two outcomes of a case fail the differential test, or None when they pass:
    a case must agree unless ``known`` lists it, and a listed case must still differ."""
    same = agree(theirs, ours)
    if case_id in known:
        category, reason = known[case_id]
        return None if not same else (
            f"{case_id} now agrees with n8n's own runner: take it off "
            f"tests/n8n/differential/known.py (was {category}: {reason})")
    return None if same else f"{case_id} differs from n8n's own runner: {what_differs(theirs, ours)}"


@dataclass(frozen=True)
class Report:
    """A comparison of the whole corpus."""

    total: int
    agreed: list[str]
    differing: dict[str, str]  # case id -> what differs
    categories: dict[str, str]  # differing case id -> category ("unlisted" when not known)
    n8n_ok: int
    ours_ok_of_n8n_ok: int
    agreed_of_n8n_ok: int

    @property
    def rate(self) -> float:
        return len(self.agreed) / self.total if self.total else 1.0

    def per_category(self) -> Counter[str]:
        return Counter(self.categories.values())

    def text(self, verbose: bool = True) -> str:
        lines = [
            f"differential corpus: {self.total} Code nodes, n8n's own JS runner vs ours",
            f"strict agreement (same status, items, error text): {len(self.agreed)}/{self.total}"
            f" = {100 * self.rate:.1f}%",
            f"of the {self.n8n_ok} n8n's runner completes: ours completes {self.ours_ok_of_n8n_ok},"
            f" agrees on {self.agreed_of_n8n_ok}",
            "differences per category:",
        ]
        for category, count in sorted(self.per_category().items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"  {count:4d}  {category}")
        if verbose:
            lines.append("differences:")
            for cid in sorted(self.differing):
                lines.append(f"  {cid} [{self.categories[cid]}]: {self.differing[cid]}")
        return "\n".join(lines)


def report(cases: Iterable[Case], theirs: Mapping[str, Mapping[str, Any]],
           ours: Mapping[str, Mapping[str, Any]], known: Mapping[str, tuple[str, str]]) -> Report:
    """Compare normalised outcomes per case; ``known`` maps case id -> (category, reason)."""
    agreed: list[str] = []
    differing: dict[str, str] = {}
    categories: dict[str, str] = {}
    n8n_ok = ours_ok = agreed_ok = 0
    total = 0
    for case in cases:
        total += 1
        a, b = theirs[case.id], ours[case.id]
        same = agree(a, b)
        if a["status"] == "ok":
            n8n_ok += 1
            ours_ok += b["status"] == "ok"
            agreed_ok += same
        if same:
            agreed.append(case.id)
        else:
            differing[case.id] = what_differs(a, b)
            categories[case.id] = known[case.id][0] if case.id in known else "unlisted"
    return Report(total, agreed, differing, categories, n8n_ok, ours_ok, agreed_ok)
