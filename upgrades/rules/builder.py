"""The rule builder's form: what fields each condition kind takes, and the tree posted back as flat fields.

The page (templates/admin/upgrades/triggerrule/builder.html) draws the tree from `spec()` and posts
one set of inputs per node: `node-<n>-parent` (the parent node's number, empty for the root),
`node-<n>-type` (all, any, not or a condition kind) and `node-<n>-<field>` for a condition's
fields. `tree_from_post` rebuilds the JSON; the service validates it like any other input.
"""

from __future__ import annotations

from typing import Any

from upgrades.rules.conditions import KINDS, RuleCatalog
from upgrades.rules.conditions.account_kinds import ATTRIBUTES

MAX_NODES = 60


def spec(catalog: RuleCatalog) -> dict[str, Any]:
    meters = [[m.key, m.name] for m in catalog.meters.values()]
    features = [[k, v] for k, v in catalog.features.items()]
    num = lambda name, label, default: {"name": name, "label": label, "type": "number", "default": default}  # noqa: E731
    meter = {"name": "meter", "label": "Meter", "type": "select", "choices": meters}
    fields: dict[str, list[dict[str, Any]]] = {
        "meter_utilisation": [meter, num("percent", "at >= % of the limit", 90), num("min_days", "on (days)", 1),
                              num("days", "of the last (days)", 1)],
        "seats_used": [meter, num("percent", "at >= % of seats bought", 90)],
        "meter_value": [meter, {"name": "op", "label": "is", "type": "select",
                                "choices": [["at_least", ">="], ["at_most", "<="]]},
                        num("value", "value", 1000), num("days", "over the last (days)", 7)],
        "meter_growth": [meter, num("percent", "grew by >= %", 30), num("days", "window (7 = week, 30 = month)", 7)],
        "usage_fall": [meter, num("percent", "fell by >= %", 50), num("days", "window (days)", 14)],
        "gate_hits": [{"name": "feature", "label": "Feature", "type": "select", "choices": features},
                      num("min_count", "hits >=", 3), num("days", "in the last (days)", 14)],
        "event_seen": [{"name": "event", "label": "Event name", "type": "text", "default": "login"},
                       {"name": "seen", "label": "", "type": "select",
                        "choices": [["true", "seen"], ["false", "not seen"]]},
                       num("days", "in the last (days)", 14)],
        "support_tickets": [num("min_count", "tickets >=", 3), num("days", "in the last (days)", 30)],
        "survey_answer": [{"name": "survey", "label": "Survey", "type": "text", "default": "nps"},
                          {"name": "op", "label": "score", "type": "select",
                           "choices": [["at_most", "<="], ["at_least", ">="]]},
                          num("score", "value", 6), num("days", "in the last (days)", 90)],
        "trial_ends": [num("days", "within (days)", 3)],
        "renewal_within": [num("days", "within (days)", 60),
                           {"name": "date", "label": "date", "type": "select",
                            "choices": [["renewal", "renewal"], ["commitment_end", "commitment end"]]},
                           {"name": "interval", "label": "billed", "type": "select",
                            "choices": [["any", "any interval"], ["year", "annually"], ["month", "monthly"]]}],
        "account_attribute": [{"name": "field", "label": "Attribute", "type": "select",
                               "choices": [[k, v] for k, v in ATTRIBUTES.items()]},
                              {"name": "op", "label": "", "type": "select",
                               "choices": [["is", "is"], ["is_not", "is not"]]},
                              {"name": "values", "label": "one of (comma separated)", "type": "text", "default": ""}],
    }  # fmt: skip
    return {
        "kinds": [
            {"kind": k, "label": cls.label, "group": cls.group, "fields": fields.get(k, [])} for k, cls in KINDS.items()
        ],
    }


def _value(kind: str, name: str, raw: str) -> Any:
    raw = raw.strip()
    if name == "seen":
        return raw != "false"
    if name == "values":
        return [v.strip() for v in raw.split(",") if v.strip()]
    if name in {"percent", "days", "min_days", "value", "min_count", "score"}:
        return int(raw) if raw.lstrip("-").isdigit() else raw
    return raw


def tree_from_post(post: Any) -> Any:
    """The condition JSON from the builder's flat fields (shape errors are left to the validator)."""
    nodes: dict[str, dict[str, Any]] = {}
    parents: dict[str, str] = {}
    order: list[str] = []
    for key in post:
        if key.startswith("node-") and key.endswith("-type"):
            n = key[5:-5]
            if not n.isdigit() or len(order) >= MAX_NODES:
                continue
            order.append(n)
    order.sort(key=int)
    for n in order:
        kind = post.get(f"node-{n}-type", "")
        parents[n] = post.get(f"node-{n}-parent", "")
        if kind in ("all", "any"):
            nodes[n] = {kind: []}
        elif kind == "not":
            nodes[n] = {"not": None}
        else:
            node: dict[str, Any] = {"kind": kind}
            prefix = f"node-{n}-"
            for key in post:
                if key.startswith(prefix) and key not in (prefix + "type", prefix + "parent"):
                    node[key[len(prefix) :]] = _value(kind, key[len(prefix) :], post.get(key, ""))
            nodes[n] = node
    root: Any = None
    for n in order:
        parent = parents[n]
        if not parent:
            root = nodes[n] if root is None else root
            continue
        target = nodes.get(parent)
        if target is None:
            continue
        if "not" in target and len(target) == 1:
            target["not"] = nodes[n]
        else:
            next(iter(target.values())).append(nodes[n])
    for node in nodes.values():
        if "not" in node and node["not"] is None:
            node["not"] = {"all": []}  # an empty "not" reads as an empty group: the validator says so
    return root if root is not None else {"all": []}
