"""``orrery publish TOPIC JSON``, ``orrery request TOPIC JSON`` and ``orrery tail PATTERN``."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from ._client import ClientStateDirOpt, JsonOpt, TokenOpt, UrlOpt, connect
from ._output import print_json

__all__ = ["publish_command", "request_command", "tail_command"]

TopicArg = Annotated[str, typer.Argument(metavar="TOPIC", help="Topic, e.g. greet.hello")]
DataArg = Annotated[
    str,
    typer.Argument(metavar="JSON", help='The data as JSON, e.g. \'{"who": "x"}\' or \'"text"\''),
]


def _headers(pairs: list[str]) -> dict[str, str] | None:
    headers: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise typer.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--header")
        headers[name] = value
    return headers or None


def _json_arg(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as e:
        raise typer.BadParameter(
            f'not valid JSON ({e}); quote it for the shell, e.g. \'{{"who": "world"}}\' '
            f"or '\"a string\"'",
            param_hint="JSON",
        ) from e


def publish_command(
    topic: TopicArg,
    data: DataArg,
    key: Annotated[
        str | None, typer.Option("--key", metavar="KEY", help="Ordering/partition key.")
    ] = None,
    header: Annotated[
        list[str] | None,
        typer.Option("--header", metavar="NAME=VALUE", help="Extension attribute (repeatable)."),
    ] = None,
    state_dir: ClientStateDirOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Publish one event through the running daemon and print its id."""
    body: dict[str, Any] = {"topic": topic, "data": _json_arg(data)}
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


def request_command(
    topic: TopicArg,
    data: DataArg = "null",
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout", min=0.001, max=300, metavar="SECONDS", help="How long to wait for a reply."
        ),
    ] = 5.0,
    state_dir: ClientStateDirOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send a request through the running daemon and print the reply as JSON.

    Exit code 1 when no reply arrives within --timeout.
    """
    body = {"topic": topic, "data": _json_arg(data), "timeout": timeout}
    answer = connect(state_dir, url, token).call("POST", "/v1/requests", body)
    print_json(answer if as_json else answer["reply"])


def tail_command(
    pattern: Annotated[
        str, typer.Argument(metavar="PATTERN", help="Pattern: * is one token, > the rest")
    ] = ">",
    last_event_id: Annotated[
        str | None,
        typer.Option("--since", metavar="EVENT_ID", help="Resume after this event id."),
    ] = None,
    state_dir: ClientStateDirOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print events matching PATTERN as they are published, until Ctrl-C."""
    client = connect(state_dir, url, token)
    try:
        for kind, item in client.stream(pattern, last_event_id):
            if kind == "notice":
                typer.echo(f"notice: {item.get('message', item)}", err=True)
            elif as_json:
                # One CloudEvent per line, flushed: ready for jq and pipes.
                typer.echo(json.dumps(item))
            else:
                time = str(item.get("time", ""))[11:23]
                key = f" {item['subject']}" if item.get("subject") else ""
                typer.echo(f"{time} {item['type']}{key} {json.dumps(item.get('data'))}")
    except KeyboardInterrupt:
        pass
