"""``orrery workflows ...``: the plugin's command line, talking to a running daemon.

Mounted by ``orrery`` through the ``orrery.cli`` entry point. The only module of the
plugin that imports typer: the plugin itself stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from orrery.sdk import cli

from ._loader import load_yaml
from .errors import DefinitionError

__all__ = ["app"]

#: Where the daemon mounts the plugin's routes.
BASE = "/v1/plugins/workflows"

app = cli.plugin_app("workflows", help="Workflows and their runs on a running daemon.")

FileArg = Annotated[Path, typer.Argument(help="A workflow YAML file.", exists=True, dir_okay=False)]
RunArg = Annotated[str, typer.Argument(metavar="RUN", help="A run id.")]
StepArg = Annotated[str, typer.Argument(metavar="STEP", help="The approval step's id.")]


@app.command("ls")
@cli.handle_errors
def ls(
    url: cli.UrlOpt = None,
    token: cli.TokenOpt = None,
    state_dir: cli.StateDirOpt = None,
    as_json: cli.JsonOpt = False,
    wide: cli.WideOpt = False,
) -> None:
    """The workflows the daemon knows (latest versions)."""
    rows = cli.connect(url, token, state_dir).call("GET", f"{BASE}/workflows")
    cli.output(
        rows,
        as_json=as_json,
        columns=["name", "version", "steps", "description"],
        wide=wide,
        empty="no workflows",
    )


@app.command("add")
@cli.handle_errors
def add(
    file: FileArg,
    url: cli.UrlOpt = None,
    token: cli.TokenOpt = None,
    state_dir: cli.StateDirOpt = None,
    as_json: cli.JsonOpt = False,
) -> None:
    """Store a workflow file (a changed one becomes a new version)."""
    text = file.read_text(encoding="utf-8")
    try:
        name = load_yaml(text, str(file)).name
    except DefinitionError as e:
        cli.fail(str(e))
    answer = cli.connect(url, token, state_dir).call(
        "PUT", f"{BASE}/workflows/{name}", {"yaml": text}
    )
    if as_json:
        cli.print_json(answer)
    else:
        typer.echo(f"{answer['name']} version {answer['version']}")


@app.command("show")
@cli.handle_errors
def show(
    name: Annotated[str, typer.Argument(metavar="NAME")],
    version: Annotated[int | None, typer.Option("--version", help="A version.")] = None,
    url: cli.UrlOpt = None,
    token: cli.TokenOpt = None,
    state_dir: cli.StateDirOpt = None,
    as_json: cli.JsonOpt = False,
) -> None:
    """A workflow's definition."""
    query = {"version": version} if version is not None else None
    answer = cli.connect(url, token, state_dir).call("GET", f"{BASE}/workflows/{name}", query=query)
    if as_json:
        cli.print_json(answer)
        return
    typer.echo(f"{answer['name']} version {answer.get('version', 1)}")
    for step in answer["steps"]:
        kind = next((k for k in ("call", "agent", "task") if k in step), "approval")
        needs = f" needs {', '.join(step['needs'])}" if step.get("needs") else ""
        typer.echo(f"  {step['id']}: {kind} {step.get(kind, '')}{needs}".rstrip())


@app.command("validate")
@cli.handle_errors
def validate(file: FileArg, as_json: cli.JsonOpt = False) -> None:
    """Check a workflow file locally: exit 1 with the line and the reason if refused."""
    try:
        workflow = load_yaml(file.read_text(encoding="utf-8"), str(file))
    except DefinitionError as e:
        if as_json:
            cli.print_json({"ok": False, "line": e.line, "reason": e.reason, "error": str(e)})
            raise typer.Exit(cli.EXIT_FAILED) from e
        cli.fail(str(e))
    result = {
        "ok": True,
        "name": workflow.name,
        "version": workflow.version,
        "steps": [s.id for s in workflow.steps],
    }
    if as_json:
        cli.print_json(result)
    else:
        typer.echo(f"{file}: ok ({workflow.name}, {len(workflow.steps)} steps)")


@app.command("run")
@cli.handle_errors
def run(
    name: Annotated[str, typer.Argument(metavar="NAME")],
    input: Annotated[str, typer.Option("--input", help="The input as JSON.")] = "{}",
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait until it finishes or waits for an approval.")
    ] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds --wait waits.")] = 60,
    url: cli.UrlOpt = None,
    token: cli.TokenOpt = None,
    state_dir: cli.StateDirOpt = None,
    as_json: cli.JsonOpt = False,
) -> None:
    """Start a run; prints its id (with --wait, its final state; exit 1 if it failed)."""
    body: dict[str, Any] = {"workflow": name, "input": cli.parse_json(input, "--input")}
    if wait:
        body["wait"] = timeout
    client = cli.connect(url, token, state_dir)
    client.timeout = max(client.timeout, timeout + 5)
    answer = client.call("POST", f"{BASE}/runs", body)
    if not wait:
        cli.print_json(answer) if as_json else typer.echo(answer["id"])
        return
    doc = answer["run"]
    _print_run(doc, as_json)
    if doc["status"] in ("failed", "compensated", "cancelled"):
        raise typer.Exit(cli.EXIT_FAILED)


@app.command("runs")
@cli.handle_errors
def runs(
    status: Annotated[str | None, typer.Option("--status", help="Only this status.")] = None,
    workflow: Annotated[str | None, typer.Option("--workflow", help="Only this one.")] = None,
    url: cli.UrlOpt = None,
    token: cli.TokenOpt = None,
    state_dir: cli.StateDirOpt = None,
    as_json: cli.JsonOpt = False,
    wide: cli.WideOpt = False,
) -> None:
    """The run list, newest first."""
    rows = cli.connect(url, token, state_dir).call(
        "GET", f"{BASE}/runs", query={"status": status, "workflow": workflow}
    )
    cli.output(
        rows,
        as_json=as_json,
        columns=["id", "workflow", "version", "status"],
        wide=wide,
        empty="no runs",
    )


def _print_run(doc: dict[str, Any], as_json: bool) -> None:
    if as_json:
        cli.print_json(doc)
        return
    typer.echo(f"{doc['id']} {doc['workflow']} v{doc['version']}: {doc['status']}")
    for sid, step in doc["steps"].items():
        extra = f" ({step['error']})" if step.get("error") else ""
        typer.echo(f"  {sid}: {step['status']}, {step['attempts']} attempt(s){extra}")
    if doc.get("error"):
        typer.echo(f"error: {doc['error']}")


@app.command("status")
@cli.handle_errors
def status(
    run_id: RunArg,
    url: cli.UrlOpt = None,
    token: cli.TokenOpt = None,
    state_dir: cli.StateDirOpt = None,
    as_json: cli.JsonOpt = False,
) -> None:
    """A run with the state of each step."""
    _print_run(cli.connect(url, token, state_dir).call("GET", f"{BASE}/runs/{run_id}"), as_json)


def _decide(
    run_id: str,
    step: str,
    approved: bool,
    comment: str | None,
    by: str | None,
    url: str | None,
    token: str | None,
    state_dir: Path | None,
    as_json: bool,
) -> None:
    body = {"approved": approved, "comment": comment, "by": by}
    body = {k: v for k, v in body.items() if v is not None}
    doc = cli.connect(url, token, state_dir).call(
        "POST", f"{BASE}/runs/{run_id}/approvals/{step}", body
    )
    _print_run(doc, as_json)


CommentOpt = Annotated[str | None, typer.Option("--comment", help="Why.")]
ByOpt = Annotated[
    str | None, typer.Option("--by", help="Who decides (default: the token's principal).")
]


@app.command("approve")
@cli.handle_errors
def approve(
    run_id: RunArg,
    step: StepArg,
    comment: CommentOpt = None,
    by: ByOpt = None,
    url: cli.UrlOpt = None,
    token: cli.TokenOpt = None,
    state_dir: cli.StateDirOpt = None,
    as_json: cli.JsonOpt = False,
) -> None:
    """Approve a waiting approval step; the run goes on."""
    _decide(run_id, step, True, comment, by, url, token, state_dir, as_json)


@app.command("deny")
@cli.handle_errors
def deny(
    run_id: RunArg,
    step: StepArg,
    comment: CommentOpt = None,
    by: ByOpt = None,
    url: cli.UrlOpt = None,
    token: cli.TokenOpt = None,
    state_dir: cli.StateDirOpt = None,
    as_json: cli.JsonOpt = False,
) -> None:
    """Deny a waiting approval step; the run compensates and fails."""
    _decide(run_id, step, False, comment, by, url, token, state_dir, as_json)


@app.command("approvals")
@cli.handle_errors
def approvals(
    url: cli.UrlOpt = None,
    token: cli.TokenOpt = None,
    state_dir: cli.StateDirOpt = None,
    as_json: cli.JsonOpt = False,
    wide: cli.WideOpt = False,
) -> None:
    """Pending approvals."""
    rows = cli.connect(url, token, state_dir).call("GET", f"{BASE}/approvals")
    cli.output(
        rows,
        as_json=as_json,
        columns=["run", "workflow", "step", "approvers"],
        wide=wide,
        empty="no pending approvals",
    )


@app.command("cancel")
@cli.handle_errors
def cancel(
    run_id: RunArg,
    url: cli.UrlOpt = None,
    token: cli.TokenOpt = None,
    state_dir: cli.StateDirOpt = None,
    as_json: cli.JsonOpt = False,
) -> None:
    """Cancel a run that has not finished."""
    _print_run(
        cli.connect(url, token, state_dir).call("POST", f"{BASE}/runs/{run_id}/cancel", {}), as_json
    )
