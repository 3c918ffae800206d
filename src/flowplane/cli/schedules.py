"""``flowplane schedules ...``: cron schedules on a server, through the client."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from flowplane.cli._client import AsJson, Server, Token, remote
from flowplane.cli._common import EXIT_INVALID, fail, parse_json
from flowplane.cli._output import print_json, print_table
from flowplane.cli.remote import Watch, _dump, _emit, console, started

if TYPE_CHECKING:
    from flowplane.client import Schedule

schedules_app = typer.Typer(help="Cron schedules on a server.", no_args_is_help=True)

ScheduleId = Annotated[str, typer.Argument(help="Schedule id.")]
Cron = Annotated[
    str | None,
    typer.Option("--cron", help="5-field cron, @hourly-style macro, or 6 fields with seconds."),
]
Timezone = Annotated[str | None, typer.Option("--timezone", help="IANA zone (default UTC).")]
InputJson = Annotated[
    str | None, typer.Option("--input", "-i", help="The run input as a JSON object.")
]
Catchup = Annotated[
    str | None, typer.Option("--catchup", help="Missed slots after downtime: skip, latest, all.")
]


def _time(ms: int | None) -> str:
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def _input(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    value = parse_json(text, "--input")
    if not isinstance(value, dict):
        fail("--input must be a JSON object", EXIT_INVALID)
    return value


def _line(schedule: Schedule) -> str:
    state = "enabled" if schedule.enabled else "disabled"
    return (
        f"schedule {schedule.id} {escape(schedule.name)} ({schedule.cron} {schedule.timezone}, "
        f"{state}); next {_time(schedule.next_fire_at_ms)}"
    )


@schedules_app.command("list")
def schedules_list(
    namespace: Annotated[list[str] | None, typer.Option(help="Only these namespaces.")] = None,
    workflow_id: Annotated[str | None, typer.Option(help="Only this workflow's.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
    cursor: Annotated[str | None, typer.Option(help="Next-page cursor.")] = None,
    server: Server = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """List schedules."""
    with remote(server, token) as fp:
        page = fp.list_schedules(
            namespace=namespace, workflow_id=workflow_id, limit=limit, cursor=cursor
        )
    if as_json:
        print_json(
            console, {"items": [_dump(s) for s in page.items], "nextCursor": page.next_cursor}
        )
        return
    table = Table("ID", "Name", "Cron", "Zone", "Enabled", "Next", "Owner")
    table.columns[0].no_wrap = True
    for s in page.items:
        table.add_row(
            s.id,
            escape(s.name),
            escape(s.cron),
            s.timezone,
            "yes" if s.enabled else "no",
            _time(s.next_fire_at_ms),
            s.owner,
        )
    print_table(console, table)
    if page.next_cursor:
        console.print(f"[dim]more: --cursor {page.next_cursor}[/]")


@schedules_app.command("show")
def schedules_show(
    schedule_id: ScheduleId, server: Server = None, token: Token = None, as_json: AsJson = False
) -> None:
    """Describe a schedule and its recent fires."""
    with remote(server, token) as fp:
        schedule = fp.get_schedule(schedule_id)
    if as_json:
        print_json(console, _dump(schedule))
        return
    console.print(_line(schedule))
    for fire in schedule.recent_fires or []:
        console.print(f"  {_time(fire.slot_ms)} {fire.status} {fire.run_id or ''}")


@schedules_app.command("create")
def schedules_create(
    workflow: Annotated[str, typer.Argument(help="Workflow name (or id with --by-id).")],
    cron: Cron = None,
    name: Annotated[str | None, typer.Option("--name", help="A name for the schedule.")] = None,
    namespace: Annotated[str | None, typer.Option("--namespace", "-n")] = None,
    timezone: Timezone = None,
    input_json: InputJson = None,
    catchup: Catchup = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it disabled.")] = False,
    by_id: Annotated[bool, typer.Option("--by-id", help="WORKFLOW is an id.")] = False,
    server: Server = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Create a schedule that runs a workflow."""
    if not cron:
        fail("--cron is required", EXIT_INVALID)
    with remote(server, token) as fp:
        schedule = fp.create_schedule(
            cron,
            workflow=None if by_id else workflow,
            workflow_id=workflow if by_id else None,
            namespace=namespace,
            name=name,
            timezone=timezone,
            input=_input(input_json),
            enabled=False if disabled else None,
            catchup=catchup,
        )
    _emit(as_json, schedule, "created " + _line(schedule))


@schedules_app.command("update")
def schedules_update(
    schedule_id: ScheduleId,
    cron: Cron = None,
    timezone: Timezone = None,
    input_json: InputJson = None,
    catchup: Catchup = None,
    enable: Annotated[
        bool | None, typer.Option("--enable/--disable", help="Turn it on or off.")
    ] = None,
    server: Server = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Change a schedule (only the options given)."""
    changes: dict[str, Any] = {
        "cron": cron,
        "timezone": timezone,
        "input": _input(input_json),
        "catchup": catchup,
        "enabled": enable,
    }
    with remote(server, token) as fp:
        schedule = fp.update_schedule(schedule_id, **changes)
    _emit(as_json, schedule, "updated " + _line(schedule))


@schedules_app.command("delete")
def schedules_delete(schedule_id: ScheduleId, server: Server = None, token: Token = None) -> None:
    """Delete a schedule."""
    with remote(server, token) as fp:
        fp.delete_schedule(schedule_id)
    console.print(f"deleted schedule {schedule_id}")


@schedules_app.command("trigger")
def schedules_trigger(
    schedule_id: ScheduleId,
    input_json: InputJson = None,
    watch: Watch = False,
    server: Server = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Start a run of the schedule's workflow now (with its input, or --input)."""
    with remote(server, token) as fp:
        run_id = fp.trigger_schedule(schedule_id, input=_input(input_json))
        started(fp, run_id, f"Run {run_id} started", watch, as_json, {"runId": run_id})


def register(app: typer.Typer) -> None:
    """Add ``flowplane schedules``."""
    app.add_typer(schedules_app, name="schedules")
