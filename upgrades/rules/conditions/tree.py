"""The condition tree: all / any / not over leaves, and the one JSON schema in and out.

JSON shape (json-logic's data-not-code idea, with our own typed leaves):
  {"all": [node, ...]} | {"any": [node, ...]} | {"not": node} | {"kind": "<leaf kind>", ...fields}
"""

from __future__ import annotations

from typing import Any

from upgrades.rules.conditions.base import (
    KINDS,
    AccountData,
    Condition,
    ConditionError,
    EvalContext,
    Result,
    RuleCatalog,
    SqlQuery,
)

MAX_DEPTH = 5
MAX_LEAVES = 25


class Group(Condition):
    op: str

    def explain(self, data: AccountData, ctx: EvalContext) -> Result:
        return self.evaluate(data, ctx)

    def __init__(self, children: list[Condition]) -> None:
        self.children = children

    def to_json(self) -> dict[str, Any]:
        return {self.op: [c.to_json() for c in self.children]}

    def leaves(self) -> list[Condition]:
        return [leaf for c in self.children for leaf in c.leaves()]

    def _part(self, child: Condition, catalog: RuleCatalog) -> str:
        text = child.describe(catalog)
        return f"({text})" if isinstance(child, Group) and len(child.children) > 1 else text


class All(Group):
    op = "all"

    def describe(self, catalog: RuleCatalog) -> str:
        return ", and ".join(self._part(c, catalog) for c in self.children)

    def evaluate(self, data: AccountData, ctx: EvalContext) -> Result:
        results = [c.explain(data, ctx) for c in self.children]
        facts = [f for r in results for f in r.facts]
        return Result(all(r.matched for r in results), sentence="; ".join(r.sentence for r in results if r.sentence),
                      facts=facts)  # fmt: skip

    def compile(self, q: SqlQuery) -> str:
        return "(" + " AND ".join(c.compile(q) for c in self.children) + ")"


class AnyOf(Group):
    op = "any"

    def describe(self, catalog: RuleCatalog) -> str:
        return " or ".join(self._part(c, catalog) for c in self.children)

    def evaluate(self, data: AccountData, ctx: EvalContext) -> Result:
        results = [c.explain(data, ctx) for c in self.children]
        hits = [r for r in results if r.matched]
        return Result(bool(hits), sentence="; ".join(r.sentence for r in hits if r.sentence),
                      facts=[f for r in hits for f in r.facts])  # fmt: skip

    def compile(self, q: SqlQuery) -> str:
        return "(" + " OR ".join(c.compile(q) for c in self.children) + ")"


class Not(Group):
    op = "not"

    def to_json(self) -> dict[str, Any]:
        return {"not": self.children[0].to_json()}

    def describe(self, catalog: RuleCatalog) -> str:
        return f"not ({self.children[0].describe(catalog)})"

    def evaluate(self, data: AccountData, ctx: EvalContext) -> Result:
        inner = self.children[0].explain(data, ctx)
        sentence = f"not: {self.children[0].describe(ctx.catalog)}"
        return Result(not inner.matched, sentence=sentence, facts=[{"kind": "not", "sentence": sentence}])

    def compile(self, q: SqlQuery) -> str:
        return f"NOT ({self.children[0].compile(q)})"


def parse_condition(data: Any, catalog: RuleCatalog) -> Condition:
    """JSON -> a validated tree, or ConditionError listing every problem with its path."""
    errors: list[dict[str, str]] = []
    leaves = 0

    def walk(node: Any, path: str, depth: int) -> Condition | None:
        nonlocal leaves
        if depth > MAX_DEPTH:
            errors.append({"path": path, "message": f"Groups may nest at most {MAX_DEPTH} deep."})
            return None
        if not isinstance(node, dict):
            errors.append({"path": path, "message": "Each part of a rule must be a group or a condition."})
            return None
        if "kind" in node:
            cls = KINDS.get(node["kind"]) if isinstance(node["kind"], str) else None
            if cls is None:
                errors.append({"path": f"{path}.kind", "message": f"Unknown condition kind {node['kind']!r}."})
                return None
            leaves += 1
            try:
                return cls.from_json(node, catalog, path)
            except ConditionError as exc:
                errors.extend(exc.errors)
                return None
        ops = [k for k in ("all", "any", "not") if k in node]
        if len(ops) != 1 or len(node) != 1:
            errors.append({"path": path, "message": "A group is exactly one of all, any or not."})
            return None
        op = ops[0]
        if op == "not":
            child = walk(node["not"], f"{path}.not", depth + 1)
            return Not([child]) if child is not None else None
        items = node[op]
        if not isinstance(items, list) or not items:
            errors.append({"path": f"{path}.{op}", "message": "This group is empty: add at least one condition."})
            return None
        children = [walk(item, f"{path}.{op}[{i}]", depth + 1) for i, item in enumerate(items)]
        if any(c is None for c in children):
            return None
        return (All if op == "all" else AnyOf)([c for c in children if c is not None])

    tree = walk(data, "condition", 1)
    if leaves > MAX_LEAVES:
        errors.append({"path": "condition", "message": f"A rule may hold at most {MAX_LEAVES} conditions."})
    if errors or tree is None:
        raise ConditionError(errors or [{"path": "condition", "message": "The rule has no condition."}])
    return tree
