"""``flowplane connectors list|show``: browse the connector catalogue."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from flowplane.connectors.registry import Registry


def _registry(plugins: list[str] | None) -> Registry:
    from flowplane.connectors.registry import default_registry, load_plugin_module

    registry = default_registry()
    for module in plugins or []:
        load_plugin_module(registry, module)
    return registry


def register(app: typer.Typer) -> None:
    """Add the ``connectors`` command group to ``app``."""
    group = typer.Typer(help="Browse the connector catalogue.", no_args_is_help=True)

    @group.command("list")
    def list_(
        category: Annotated[str | None, typer.Option(help="Only this category.")] = None,
        query: Annotated[str | None, typer.Option("--query", "-q", help="Search words.")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
        plugin: Annotated[list[str] | None, typer.Option(help="Load a plugin module.")] = None,
    ) -> None:
        """List connectors (type, category, description)."""
        from flowplane.services.caller import Caller
        from flowplane.services.catalog import ConnectorCatalog

        catalog = ConnectorCatalog(_registry(plugin))
        manifests = catalog.search(Caller.system("cli"), category=category, q=query)
        if as_json:
            typer.echo(json.dumps([m.summary() for m in manifests], indent=2))
            return
        table = Table("type", "category", "description")
        for manifest in manifests:
            table.add_row(manifest.type, manifest.category, manifest.description)
        Console().print(table)
        Console().print(f"{len(manifests)} connectors")

    @group.command("show")
    def show(
        type_: Annotated[str, typer.Argument(metavar="TYPE", help="Connector type.")],
        plugin: Annotated[list[str] | None, typer.Option(help="Load a plugin module.")] = None,
    ) -> None:
        """Print one connector's full manifest as JSON."""
        registry = _registry(plugin)
        if type_ not in registry:
            suggestions = registry.close_matches(type_)
            hint = f" (did you mean {', '.join(suggestions)}?)" if suggestions else ""
            typer.echo(f"unknown connector {type_!r}{hint}", err=True)
            raise typer.Exit(1)
        typer.echo(json.dumps(registry.get(type_).manifest.to_dict(), indent=2))

    app.add_typer(group, name="connectors")
