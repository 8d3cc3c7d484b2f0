"""orrery.sdk.cli: a plugin command line against a real daemon on loopback."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from orrery.kernel import Kernel
from orrery.kernel.daemon import Daemon
from orrery.sdk import Context, HttpRequest, HttpResponse, Plugin, cli, hookimpl
from orrery.sdk.client import context_path, find_state_dir
from orrery.sdk.errors import ApiError, ConfigError, DaemonNotRunning, OrreryError, UsageError
from typer.testing import CliRunner

LONG = "a very long source description " * 6


class Shelf(Plugin):
    name = "shelf"

    @hookimpl
    def orrery_start(self, ctx: Context) -> None:
        books = {"1": {"id": "1", "title": "Short", "note": LONG}}

        def get_book(request: HttpRequest) -> Any:
            return books[request.params["id"]]

        ctx.http.route("GET", "/books", lambda r: list(books.values()))
        ctx.http.route("GET", "/books/{id}", get_book)
        ctx.http.route("GET", "/metrics", lambda r: HttpResponse("books_total 1\n"))


app = cli.plugin_app("shelf", help="Books on a running daemon.")


@app.command("ls")
@cli.handle_errors
def ls(
    url: cli.UrlOpt = None,
    token: cli.TokenOpt = None,
    state_dir: cli.StateDirOpt = None,
    as_json: cli.JsonOpt = False,
    wide: cli.WideOpt = False,
) -> None:
    client = cli.connect(url, token, state_dir)
    books = client.call("GET", "/v1/plugins/shelf/books")
    cli.output(books, as_json=as_json, columns=["id", "title", "note"], wide=wide)


@app.command("show")
@cli.handle_errors
def show(
    book: str,
    url: cli.UrlOpt = None,
    token: cli.TokenOpt = None,
    state_dir: cli.StateDirOpt = None,
) -> None:
    client = cli.connect(url, token, state_dir)
    cli.print_json(client.call("GET", f"/v1/plugins/shelf/books/{book}"))


@app.command("metrics")
@cli.handle_errors
def metrics(url: cli.UrlOpt = None, token: cli.TokenOpt = None) -> None:
    typer.echo(cli.connect(url, token).text("GET", "/v1/plugins/shelf/metrics"), nl=False)


@app.command("add")
@cli.handle_errors
def add(data: str) -> None:
    cli.print_json(cli.parse_json(data, "DATA"))


class RunningDaemon:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.loop = asyncio.new_event_loop()
        self.daemon = Daemon(
            Kernel(plugins=[Shelf], state_dir=state_dir, entry_points=False, env={}), port=0
        )
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> RunningDaemon:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.daemon.start(), self.loop).result(60)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.daemon.stop(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    @property
    def token(self) -> str:
        return (self.state_dir / "token").read_text().strip()


@pytest.fixture
def running(tmp_path: Path) -> Iterator[RunningDaemon]:
    with RunningDaemon(tmp_path / "project" / ".orrery") as d:
        yield d


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with no .orrery in it or above it."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    monkeypatch.chdir(folder)
    for name in ("ORRERY_URL", "ORRERY_TOKEN", "ORRERY_STATE_DIR"):
        monkeypatch.delenv(name, raising=False)
    return folder


runner = CliRunner()


def test_a_command_finds_the_daemon_from_a_subdirectory(
    running: RunningDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = running.state_dir.parent / "src" / "deep"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    result = runner.invoke(app, ["ls", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["title"] == "Short"


def test_a_command_finds_the_last_daemon_started_from_anywhere(
    running: RunningDaemon, elsewhere: Path
) -> None:
    assert context_path().is_file()
    assert find_state_dir() == running.state_dir.resolve()
    result = runner.invoke(app, ["ls", "--json"])
    assert result.exit_code == 0, result.output


def test_the_record_goes_when_the_daemon_stops(tmp_path: Path, elsewhere: Path) -> None:
    with RunningDaemon(tmp_path / "other" / ".orrery"):
        assert find_state_dir() is not None
    assert find_state_dir() is None


def test_tables_fit_80_columns_unless_wide(running: RunningDaemon) -> None:
    narrow = runner.invoke(app, ["ls", "--state-dir", str(running.state_dir)])
    wide = runner.invoke(app, ["ls", "--state-dir", str(running.state_dir), "--wide"])
    assert narrow.exit_code == wide.exit_code == 0
    lines = narrow.stdout.splitlines()
    assert lines[0].split() == ["ID", "TITLE", "NOTE"]
    assert max(len(line) for line in lines) <= 80
    assert lines[1].endswith("…")
    assert LONG.strip() in wide.stdout


def test_url_and_token_options_and_text_answers(running: RunningDaemon, elsewhere: Path) -> None:
    url = running.daemon.url
    result = runner.invoke(app, ["metrics", "--url", url, "--token", running.token])
    assert (result.exit_code, result.stdout) == (0, "books_total 1\n")


def test_a_failed_operation_exits_1_with_one_line(running: RunningDaemon) -> None:
    result = runner.invoke(app, ["show", "nope", "--state-dir", str(running.state_dir)])
    assert result.exit_code == cli.EXIT_FAILED
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: daemon answered 404")
    assert "Traceback" not in result.output


def test_no_daemon_is_a_usage_error_saying_what_to_do(elsewhere: Path) -> None:
    result = runner.invoke(app, ["ls"])
    assert result.exit_code == cli.EXIT_USAGE
    assert result.stderr.startswith("error: no running daemon found")
    assert "--state-dir" in result.stderr and result.stderr.count("\n") == 1


def test_an_unreachable_daemon_is_exit_2(elsewhere: Path) -> None:
    result = runner.invoke(app, ["ls", "--url", "http://127.0.0.1:9", "--token", "x"])
    assert result.exit_code == cli.EXIT_USAGE
    assert "cannot reach the daemon" in result.stderr


def test_a_wrong_token_is_exit_2(running: RunningDaemon) -> None:
    result = runner.invoke(app, ["ls", "--url", running.daemon.url, "--token", "wrong"])
    assert result.exit_code == cli.EXIT_USAGE
    assert "401" in result.stderr


def test_bad_json_argument_is_exit_2(elsewhere: Path) -> None:
    result = runner.invoke(app, ["add", "{oops"])
    assert result.exit_code == cli.EXIT_USAGE
    assert result.stderr.startswith("error: DATA is not valid JSON")


def test_usage_errors_have_no_boxes(elsewhere: Path) -> None:
    result = runner.invoke(app, ["ls", "--bogus"])
    assert result.exit_code == 2
    assert "No such option" in result.output
    assert "╭" not in result.output and "─" not in result.output


def test_format_table_cuts_the_widest_column_first() -> None:
    rows = [{"name": "scheduler", "state": "active", "source": "x" * 200}]
    text = cli.format_table(rows, ["name", "state", ("source", "SOURCE")], width=40)
    header, row = text.splitlines()
    assert len(row) == 40 and row.startswith("scheduler  active  xxx") and row.endswith("…")
    assert cli.format_table([{"a": None, "b": {"k": 1}}], ["a", "b"]).splitlines()[1] == (
        '-  {"k":1}'
    )


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (UsageError("no daemon"), 2),
        (ConfigError("bad field"), 2),
        (DaemonNotRunning("nothing at 127.0.0.1:9"), 2),
        (type("ServerDown", (OrreryError, ConnectionError), {})("NATS unreachable"), 2),
        (ApiError(400, "bad query"), 2),
        (ApiError(401, "bad token"), 2),
        (ApiError(404, "no such plugin"), 1),
        (ApiError(409, "not in that state"), 1),
        (ApiError(503, "provider missing"), 1),
        (OrreryError("the operation failed"), 1),
    ],
)
def test_exit_codes_are_one_mapping_for_every_command(error: BaseException, code: int) -> None:
    """Kernel and plugin commands share this mapping (docs/operating.md, CLI conventions)."""
    assert cli.exit_code(error) == code
