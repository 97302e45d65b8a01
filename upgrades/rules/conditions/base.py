"""The shared parts of every condition kind: what they read, how they are checked, how they compile.

Three faces that must agree (STYLE.md, "A rule condition"):
- `describe()`: the plain sentence a product manager reads;
- `evaluate(data)`: Python over one account's `AccountData`, with the numbers as evidence;
- `compile(q)`: a SQL boolean expression over the account row `a` (subqueries over rollups,
  events, licences), so one query finds the matches of many accounts at once.

Numbers are compared in integers on both sides (`used * 100 >= percent * limit`), so the two
evaluators cannot disagree by rounding. Windows:
- meter conditions read daily rollups, which are UTC days (usage's own windows; the limits an
  account sees in its entitlements are computed over the same days): "today" is the UTC day of
  `now`, "the last N days" the N rollup days ending today; a billing-period meter counts from the
  start of the account's licence period in force on each day (`periods`);
- event conditions read raw event times and use the tenant's day edges: "in the last N days"
  starts at local midnight N-1 days before the tenant's today and ends at `now`.
Nothing after `now` is ever read (the backtest replays with past `now`s).
"""

from __future__ import annotations

import datetime
import zoneinfo
from dataclasses import dataclass, field
from typing import Any, ClassVar

UTC = datetime.UTC


@dataclass(frozen=True)
class MeterInfo:
    id: int
    key: str
    name: str
    aggregation: str
    window: str
    window_days: int | None
    unit: str = ""


@dataclass(frozen=True)
class RuleCatalog:
    """What a tenant's rules may refer to, loaded once (validation and evaluation)."""

    meters: dict[str, MeterInfo]
    features: dict[str, str]  # key -> name
    csm_emails: frozenset[str] = frozenset()
    tiers: frozenset[str] = frozenset()


@dataclass(frozen=True)
class EvalContext:
    tenant_id: int
    now: datetime.datetime
    time_zone: str
    catalog: RuleCatalog

    @property
    def utc_today(self) -> datetime.date:
        return self.now.astimezone(UTC).date()

    @property
    def local_today(self) -> datetime.date:
        return self.now.astimezone(zoneinfo.ZoneInfo(self.time_zone)).date()

    def local_since(self, days: int) -> datetime.datetime:
        """Start (aware UTC) of the tenant-local day `days - 1` days before the tenant's today."""
        tz = zoneinfo.ZoneInfo(self.time_zone)
        first = self.local_today - datetime.timedelta(days=days - 1)
        return datetime.datetime(first.year, first.month, first.day, tzinfo=tz).astimezone(UTC)


@dataclass
class AccountData:
    """Everything the Python evaluator reads about one account (loaded in bulk by `data.load_account_data`)."""

    account_id: int
    attributes: dict[str, str] = field(default_factory=dict)
    rollups: dict[int, dict[datetime.date, int]] = field(default_factory=dict)  # meter id -> day -> value
    distinct: dict[int, dict[datetime.date, set[str]]] = field(default_factory=dict)  # unique-count meters
    limits: dict[int, int] = field(default_factory=dict)  # meter id -> finite, positive effective limit
    seats: int | None = None  # seats bought on an entitled licence
    period_start: datetime.datetime | None = None  # entitled licence's current period start
    period_end: datetime.datetime | None = None  # entitled licence's current period end
    commitment_end: datetime.datetime | None = None
    interval: str = ""  # entitled licence's billing interval (month / year)
    trial_ends: list[datetime.datetime] = field(default_factory=list)  # active trial grants
    events: list[tuple[str, datetime.datetime, dict[str, Any]]] = field(default_factory=list)


@dataclass
class Result:
    matched: bool
    numbers: dict[str, Any] = field(default_factory=dict)
    sentence: str = ""
    facts: list[dict[str, Any]] = field(default_factory=list)  # leaf results that explain a match


class ConditionError(Exception):
    """A rule that cannot be saved: each error names where it is and why."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{e['path']}: {e['message']}" if e["path"] else e["message"] for e in errors))
        self.errors = errors


class SqlQuery:
    """Collects parameters in the order fragments are written and hides the two SQL dialects we run on."""

    def __init__(self, ctx: EvalContext, *, vendor: str, ops: Any, account_ids: Any = None) -> None:
        self.ctx = ctx
        self.vendor = vendor
        self.ops = ops
        self.params: list[Any] = []
        self.account_ids = None if account_ids is None else [int(i) for i in account_ids]

    def p(self, value: Any) -> str:
        self.params.append(value)
        return "%s"

    def day(self, value: datetime.date) -> str:
        return self.p(self.ops.adapt_datefield_value(value))

    def ts(self, value: datetime.datetime) -> str:
        return self.p(self.ops.adapt_datetimefield_value(value))

    def tenant(self) -> str:
        return self.p(self.ctx.tenant_id)

    def among(self, column: str) -> str:
        """`column` is one of the accounts evaluated: one array parameter on PostgreSQL, an IN list elsewhere."""
        assert self.account_ids is not None
        if self.vendor == "postgresql":
            return f"{column} = ANY({self.p(self.account_ids)}::bigint[])"
        return f"{column} IN ({', '.join(self.p(i) for i in self.account_ids)})" if self.account_ids else "1 = 0"

    def rows(self, alias: str) -> str:
        """The tenant's rows of `alias`, narrowed to the evaluated accounts when there is a list of them
        (so a subquery for 1,000 dirty accounts reads their rows, not the whole tenant's)."""
        sql = f"{alias}.tenant_id = {self.tenant()}"
        return sql if self.account_ids is None else f"{sql} AND {self.among(alias + '.account_id')}"

    def json_text(self, column: str, key: str) -> str:
        if self.vendor == "postgresql":
            return f"({column} ->> {self.p(key)})"
        return f"json_extract({column}, {self.p('$.' + key)})"

    def json_number(self, column: str, key: str) -> str:
        if self.vendor == "postgresql":
            k1, k2 = self.p(key), self.p(key)
            return f"(CASE WHEN jsonb_typeof({column} -> {k1}) = 'number' THEN ({column} ->> {k2})::numeric END)"
        k1, k2 = self.p("$." + key), self.p("$." + key)
        return f"(CASE WHEN json_type({column}, {k1}) IN ('integer', 'real') THEN json_extract({column}, {k2}) END)"


class Condition:
    """One kind of condition. Subclasses declare `kind`, parse their fields in `from_json`, and
    implement the three faces. Fields are validated in `from_json` against the tenant's catalog."""

    kind: ClassVar[str]
    label: ClassVar[str]  # what the rule builder lists
    group: ClassVar[str] = "Usage"

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_json(cls, data: dict[str, Any], catalog: RuleCatalog, path: str) -> Condition:
        raise NotImplementedError

    def describe(self, catalog: RuleCatalog) -> str:
        raise NotImplementedError

    def evaluate(self, data: AccountData, ctx: EvalContext) -> Result:
        raise NotImplementedError

    def compile(self, q: SqlQuery) -> str:
        raise NotImplementedError

    def explain(self, data: AccountData, ctx: EvalContext) -> Result:
        """evaluate(), with the leaf's fact (kind, numbers, sentence) attached when it matched: the evidence."""
        result = self.evaluate(data, ctx)
        if result.matched and result.sentence:
            result.facts = [{"kind": self.kind, "numbers": result.numbers, "sentence": result.sentence}]
        return result

    # What the bulk loader must fetch for this condition.
    def meter_ids(self, catalog: RuleCatalog) -> set[int]:
        return set()

    def event_names(self) -> set[str]:
        return set()

    def rollup_first_day(self, ctx: EvalContext) -> datetime.date | None:
        return None

    def event_days(self) -> int:
        return 0

    def leaves(self) -> list[Condition]:
        return [self]


KINDS: dict[str, type[Condition]] = {}


def register(cls: type[Condition]) -> type[Condition]:
    KINDS[cls.kind] = cls
    return cls


# --- field readers: one message per bad field ------------------------------------------------


class Fields:
    """Reads a leaf's JSON fields, collecting every error with its path."""

    def __init__(self, data: dict[str, Any], path: str, allowed: set[str]) -> None:
        self.data, self.path = data, path
        self.errors: list[dict[str, str]] = []
        unknown = sorted(set(data) - allowed - {"kind"})
        if unknown:
            self.fail("", f"Unknown field(s): {', '.join(unknown)}.")

    def fail(self, name: str, message: str) -> None:
        self.errors.append({"path": f"{self.path}.{name}" if name else self.path, "message": message})

    def integer(self, name: str, *, lo: int, hi: int, default: int | None = None, what: str = "") -> int:
        value = self.data.get(name, default)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value.strip())
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(name, f"{what or name.replace('_', ' ').capitalize()} must be a whole number.")
            return lo
        if not lo <= value <= hi:
            self.fail(name, f"{what or name.replace('_', ' ').capitalize()} must be between {lo} and {hi}.")
        return value

    def choice(self, name: str, choices: tuple[str, ...], *, default: str | None = None) -> str:
        value = self.data.get(name, default)
        if value not in choices:
            self.fail(name, f"Choose one of: {', '.join(choices)}.")
            return choices[0]
        return value

    def text(self, name: str, *, max_length: int = 100, required: bool = True) -> str:
        value = self.data.get(name, "")
        if not isinstance(value, str) or (required and not value.strip()) or len(value) > max_length:
            self.fail(name, f"{name.replace('_', ' ').capitalize()} is required (at most {max_length} characters).")
            return ""
        if "\x00" in value:
            self.fail(name, "Text may not contain NUL characters.")
            return ""
        return value.strip()

    def meter(self, name: str, catalog: RuleCatalog) -> MeterInfo | None:
        key = self.data.get(name)
        meter = catalog.meters.get(key) if isinstance(key, str) else None
        if meter is None:
            known = ", ".join(sorted(catalog.meters)) or "none defined"
            self.fail(name, f"Unknown meter {key!r}; this workspace's meters: {known}.")
        return meter

    def done(self) -> None:
        if self.errors:
            raise ConditionError(self.errors)


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def days_phrase(n: int) -> str:
    return "today" if n == 1 else f"in the last {n} days"
