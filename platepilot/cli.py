"""The `platepilot` command: one Typer app; each command parses, calls one library function, prints."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from platepilot.config import dump_config, load_config
from platepilot.errors import PlatepilotError

app = typer.Typer(
    name="platepilot",
    help="Edge licence plate recognition for Florida roads, and the life cycle of its plate reader.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

config_app = typer.Typer(help="Show the effective configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("show")
def config_show(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="YAML config file (default: $PLATEPILOT_CONFIG or ./platepilot.yaml)."
    ),
) -> None:
    """Print the effective configuration (file merged over defaults) as YAML."""
    typer.echo(dump_config(load_config(config)), nl=False)


def main() -> None:
    """Console-script entry: user mistakes become one red line and exit code 1, never a traceback."""
    try:
        app()
    except PlatepilotError as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
