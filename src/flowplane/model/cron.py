"""Cron expressions: parsing, slot arithmetic across DST, and planning a schedule's due slots.

Expressions are standard 5-field cron (``minute hour day-of-month month day-of-week``), the
macros ``@yearly``/``@annually``, ``@monthly``, ``@weekly``, ``@daily``/``@midnight``,
``@hourly``, or 6 fields with a leading seconds field (``*/5 * * * * *``). They are read in an
IANA time zone, by wall-clock time, with one rule for daylight-saving changes:

* a wall-clock time that does not exist (the spring-forward gap, ``02:30`` in Paris on the
  last Sunday of March) fires once, shifted forward by the length of the gap (``03:30``);
* a wall-clock time that happens twice (the autumn fold) fires once, at its first occurrence.

Every slot is a UTC instant in milliseconds. Pure: firing the slots is the engine's business
(:mod:`flowplane.engine.scheduler`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

from flowplane.errors import InvalidCron, InvalidTimezone

Catchup = Literal["skip", "latest", "all"]
CATCHUP_POLICIES: tuple[Catchup, ...] = ("skip", "latest", "all")

MISFIRE_GRACE_MS = 10_000
"""A slot handled later than this after its time was *missed*; the catch-up policy decides."""
SCAN_LIMIT = 10_000
"""Most slots one tick looks at per schedule (the rest waits for the next tick)."""
FIRE_LIMIT = 100
"""Most runs one tick starts per schedule (``all`` after a long downtime catches up in steps)."""
MAX_YEARS_BETWEEN_MATCHES = 5
"""An expression with no slot within this many years (``0 0 30 2 *``) is refused."""

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
)
_SECOND = ("second", 0, 59)
_NAMES = {
    "month": {
        m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())
    },
    "day-of-week": {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())},
}
_ATOM = re.compile(r"^(\*|\?|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:/(\d+))?$")
_SPECIAL = re.compile(r"[lw#]")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def to_ms(value: datetime) -> int:
    """Milliseconds since the epoch of an aware datetime."""
    return (value - _EPOCH) // _MS


def from_ms(value: int) -> datetime:
    """The UTC datetime of milliseconds since the epoch."""
    return _EPOCH + timedelta(milliseconds=value)


def load_timezone(name: str) -> ZoneInfo:
    """Return the IANA zone ``name``.

    Raises:
        InvalidTimezone: the name is not a known zone.
    """
    try:
        if not name or name.startswith(("/", ".")) or ".." in name:
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidTimezone(
            f"unknown time zone {name!r}: use an IANA name such as 'UTC' or 'Europe/Paris'",
            timezone=name,
        ) from None


def _check_value(expression: str, label: str, lo: int, hi: int, text: str) -> int:
    names = _NAMES.get(label, {})
    if text.lower() in names:
        return names[text.lower()]
    if not text.isdigit():
        raise InvalidCron(
            f"invalid cron expression {expression!r}: {label} field has invalid value {text!r}",
            field=label,
        )
    value = int(text)
    if not lo <= value <= hi:
        raise InvalidCron(
            f"invalid cron expression {expression!r}: {label} value {value} is out of range "
            f"{lo}-{hi}",
            field=label,
        )
    return value


def _check_field(expression: str, label: str, lo: int, hi: int, text: str) -> None:
    for part in text.split(","):
        if label in ("day-of-month", "day-of-week") and _SPECIAL.search(part.lower()):
            continue  # L, W and # are checked by croniter below
        match = _ATOM.match(part)
        if match is None:
            raise InvalidCron(
                f"invalid cron expression {expression!r}: cannot read {label} field part {part!r}",
                field=label,
            )
        base, step = match.group(1), match.group(2)
        if base == "?" and label not in ("day-of-month", "day-of-week"):
            raise InvalidCron(
                f"invalid cron expression {expression!r}: '?' is only allowed in the "
                f"day-of-month and day-of-week fields",
                field=label,
            )
        if step is not None and not 1 <= int(step) <= hi - lo + 1:
            raise InvalidCron(
                f"invalid cron expression {expression!r}: {label} step {step} must be between "
                f"1 and {hi - lo + 1}",
                field=label,
            )
        if base in ("*", "?"):
            continue
        first, _, last = base.partition("-")
        start = _check_value(expression, label, lo, hi, first)
        if last:
            end = _check_value(expression, label, lo, hi, last)
            if end < start:
                raise InvalidCron(
                    f"invalid cron expression {expression!r}: {label} range {base} is reversed "
                    f"(write {last}-{first}, or a list)",
                    field=label,
                )


@dataclass(frozen=True)
class CronSpec:
    """A validated cron expression in a time zone; iterates its slots as UTC milliseconds."""

    expression: str
    timezone: str
    fields: str
    has_seconds: bool

    @classmethod
    def parse(cls, expression: str, timezone: str = "UTC") -> CronSpec:
        """Validate ``expression`` in ``timezone``.

        Raises:
            InvalidCron: the expression does not parse, or never fires.
            InvalidTimezone: the time zone is unknown.
        """
        text = " ".join(expression.split())
        if not text:
            raise InvalidCron("invalid cron expression '': it is empty")
        if text.startswith("@"):
            fields = MACROS.get(text.lower())
            if fields is None:
                raise InvalidCron(
                    f"invalid cron expression {text!r}: unknown macro; use one of "
                    f"{', '.join(sorted(MACROS))}"
                )
        else:
            fields = text
        parts = fields.split(" ")
        if len(parts) not in (5, 6):
            raise InvalidCron(
                f"invalid cron expression {text!r}: expected 5 fields (minute hour day-of-month "
                f"month day-of-week) or 6 with a leading second field, got {len(parts)}"
            )
        layout = (_SECOND, *_FIELDS) if len(parts) == 6 else _FIELDS
        for (label, lo, hi), part in zip(layout, parts, strict=True):
            _check_field(text, label, lo, hi, part)
        load_timezone(timezone)
        spec = cls(text, timezone, fields, len(parts) == 6)
        try:
            spec._iterator(datetime(2000, 1, 1)).get_next(datetime)
        except CroniterBadDateError:
            raise InvalidCron(
                f"invalid cron expression {text!r}: it never fires (no matching date within "
                f"{MAX_YEARS_BETWEEN_MATCHES} years)"
            ) from None
        except (CroniterError, ValueError, KeyError) as exc:
            raise InvalidCron(f"invalid cron expression {text!r}: {exc}") from None
        return spec

    @property
    def tz(self) -> ZoneInfo:
        """The schedule's time zone."""
        return load_timezone(self.timezone)

    def _iterator(self, start: datetime) -> croniter:
        return croniter(
            self.fields,
            start,
            second_at_beginning=self.has_seconds,
            max_years_between_matches=MAX_YEARS_BETWEEN_MATCHES,
        )

    def _resolve(self, naive: datetime, tz: ZoneInfo) -> tuple[datetime, timedelta]:
        """Return the UTC instant of a wall-clock time and how far a gap shifted it.

        ``fold=0`` picks the first occurrence of an ambiguous time, and for a time inside a
        gap uses the offset from before the change, which lands ``gap`` later on the clock.
        """
        instant = naive.replace(tzinfo=tz).astimezone(UTC)
        shift = instant.astimezone(tz).replace(tzinfo=None) - naive
        return instant, shift

    def iter_slots(self, after_ms: int) -> Iterator[int]:
        """Yield the slots strictly after ``after_ms``, increasing, each once.

        The slots end with the calendar of ``datetime`` (year 9999): a schedule that starts
        near it has no slot left rather than an overflow.
        """
        try:
            yield from self._slots_after(after_ms)
        except OverflowError:
            return
        except ValueError as exc:  # croniter building a date in year 10000
            if "out of range" not in str(exc):
                raise
            return

    def _slots_after(self, after_ms: int) -> Iterator[int]:
        tz = self.tz
        after = from_ms(after_ms)
        local = after.astimezone(tz)
        start = local.replace(tzinfo=None)
        # Just after a spring-forward, wall times from inside the gap land after ``after``:
        # start before the gap so they are seen.
        earlier = (after - timedelta(hours=3)).astimezone(tz)
        offset, before = local.utcoffset(), earlier.utcoffset()
        if offset is not None and before is not None and before < offset:
            start -= offset - before
        it = self._iterator(start)
        last = after

        def advance() -> datetime | None:
            try:
                value: datetime = it.get_next(datetime)
            except CroniterBadDateError:
                return None
            return value

        while (naive := advance()) is not None:
            instant, shift = self._resolve(naive, tz)
            batch = [instant]
            if shift:
                # Gap-shifted times interleave with the real times after the gap: sort the
                # candidates of the next two gap lengths before yielding any.
                limit = naive + 2 * shift
                while (ahead := advance()) is not None:
                    batch.append(self._resolve(ahead, tz)[0])
                    if ahead > limit:
                        break
                batch.sort()
            for candidate in batch:
                if candidate > last:
                    last = candidate
                    yield to_ms(candidate)

    def next_after(self, after_ms: int) -> int | None:
        """The first slot strictly after ``after_ms`` (``None`` when there is none)."""
        return next(self.iter_slots(after_ms), None)


def parse_cron(expression: str, timezone: str = "UTC") -> CronSpec:
    """Validate a cron expression in a time zone (see :meth:`CronSpec.parse`)."""
    return CronSpec.parse(expression, timezone)


def first_slot(
    spec: CronSpec, *, now_ms: int, start_at_ms: int | None, end_at_ms: int | None
) -> int | None:
    """The first slot of a schedule created or changed at ``now_ms`` (no past slots)."""
    after = max(now_ms, start_at_ms - 1) if start_at_ms is not None else now_ms
    slot = spec.next_after(after)
    return None if slot is None or (end_at_ms is not None and slot > end_at_ms) else slot


@dataclass
class SlotPlan:
    """What one tick does for one schedule."""

    fire: list[int]
    """Slots to fire, oldest first."""
    expired: int
    """Missed slots the catch-up policy leaves unfired (counted up to :data:`SCAN_LIMIT`)."""
    next_fire_ms: int | None
    """The first slot after those handled (``None``: the schedule has no slot left)."""


def plan_slots(
    spec: CronSpec,
    *,
    next_fire_ms: int,
    now_ms: int,
    catchup: str,
    window_ms: int,
    end_at_ms: int | None = None,
    grace_ms: int = MISFIRE_GRACE_MS,
    scan_limit: int = SCAN_LIMIT,
    fire_limit: int = FIRE_LIMIT,
) -> SlotPlan:
    """Decide which due slots of a schedule fire now.

    A slot at most ``grace_ms`` old is on time and always fires. Older slots were missed
    (nobody ticked: downtime) and the policy decides: ``skip`` fires none, ``latest`` fires
    the newest one within ``window_ms`` unless an on-time slot fires, ``all`` fires every one
    within ``window_ms``, oldest first, at most ``fire_limit`` per tick.
    """
    until = now_ms if end_at_ms is None else min(now_ms, end_at_ms)
    on_time_from = now_ms - grace_ms
    keep_from = on_time_from if catchup == "skip" else now_ms - max(window_ms, grace_ms)
    expired = 0
    cursor = next_fire_ms - 1
    if next_fire_ms < keep_from:
        # Slots older than the window are never fired: count them and jump over.
        stop = min(keep_from, until + 1)
        for slot in spec.iter_slots(cursor):
            if slot >= stop or expired >= scan_limit:
                break
            expired += 1
        cursor = max(cursor, stop - 1)
    missed: list[int] = []
    on_time: list[int] = []
    complete = True
    for slot in spec.iter_slots(cursor):
        if slot > until:
            break
        if len(missed) + len(on_time) >= scan_limit:
            complete = False
            break
        (on_time if slot >= on_time_from else missed).append(slot)
    if catchup == "all":
        fire = missed + on_time
    elif catchup == "latest" and missed and not on_time and complete:
        fire = [missed[-1]]
    else:
        fire = list(on_time)
    handled = missed + on_time
    if len(fire) > fire_limit:
        fire = fire[:fire_limit]
        handled = [s for s in handled if s <= fire[-1]]
    expired += len(handled) - len(fire)
    last = handled[-1] if handled else cursor
    following = spec.next_after(last)
    if following is not None and end_at_ms is not None and following > end_at_ms:
        following = None
    return SlotPlan(fire=fire, expired=expired, next_fire_ms=following)
