"""``orrery publish TOPIC JSON`` and ``orrery tail PATTERN``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from ._client import ClientStateDirOpt, JsonOpt, TokenOpt, UrlOpt, connect, print_json

__all__ = ["publish_command", "tail_command"]


def _headers(pairs: list[str]) -> dict[str, str] | None:
    headers: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise typer.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--header")
        headers[name] = value
    return headers or None


def publish_command(
    topic: Annotated[str, typer.Argument(help="Topic, e.g. greet.hello")],
    data: Annotated[str, typer.Argument(help='The event\'s data as JSON, e.g. \'{"who": "x"}\'')],
    key: Annotated[str | None, typer.Option("--key", help="Ordering/partition key.")] = None,
    header: Annotated[
        list[str] | None, typer.Option("--header", help="Extension attribute NAME=VALUE.")
    ] = None,
    state_dir: ClientStateDirOpt = Path(".orrery"),
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Publish one event through the running daemon and print its id."""
    try:
        value = json.loads(data)
    except ValueError as e:
        raise typer.BadParameter(
            f'not valid JSON ({e}); quote it for the shell, e.g. \'{{"who": "world"}}\' '
            f"or '\"a string\"'",
            param_hint="JSON",
        ) from e
    body: dict[str, Any] = {"topic": topic, "data": value}
    if key is not None:
        body["key"] = key
    headers = _headers(header or [])
    if headers:
        body["headers"] = headers
    ack = connect(state_dir, url, token).call("POST", "/v1/events", body)
    if as_json:
        print_json(ack)
    else:
        typer.echo(ack["id"])


def tail_command(
    pattern: Annotated[str, typer.Argument(help="Pattern: * is one token, > the rest")] = ">",
    last_event_id: Annotated[
        str | None, typer.Option("--since", help="Resume after this event id.")
    ] = None,
    state_dir: ClientStateDirOpt = Path(".orrery"),
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print events matching PATTERN as they are published, until Ctrl-C."""
    client = connect(state_dir, url, token)
    console = Console(highlight=False)
    errors = Console(stderr=True, highlight=False)
    try:
        for kind, item in client.stream(pattern, last_event_id):
            if kind == "notice":
                errors.print(f"[yellow]{escape(str(item.get('message', item)))}[/]")
            elif as_json:
                # One CloudEvent per line, flushed: ready for jq and pipes.
                typer.echo(json.dumps(item))
            else:
                time = str(item.get("time", ""))[11:23]
                key = f" [cyan]{escape(item['subject'])}[/]" if item.get("subject") else ""
                data = escape(json.dumps(item.get("data")))
                console.print(f"[dim]{time}[/] [bold]{escape(item['type'])}[/]{key} {data}")
    except KeyboardInterrupt:
        pass
