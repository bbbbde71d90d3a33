"""The `voxline` command: serve, keys, agents, db, call, tasks, dispatcher.

Secrets go to stdout only where they are the output (`keys create` prints the key alone, so
`KEY=$(voxline keys create)` works); everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from voxline import __version__, cli_call, cli_tasks, log_redaction
from voxline.config import Settings
from voxline.store.agents import agent_spec
from voxline.store.api_keys import create_api_key, list_api_keys, revoke_api_key
from voxline.store.database import Database, DatabaseConfigError
from voxline.store.errors import StoreError
from voxline.store.migrate import current_revisions, upgrade
from voxline.store.models import AgentRow, Workspace
from voxline.store.workspaces import get_or_create_workspace, get_workspace_by_name

Command = Callable[[argparse.Namespace, Settings], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"voxline: invalid settings (VOXLINE_* environment or .env):\n{exc}", file=sys.stderr)
        return 2
    command: Command = args.command
    try:
        return command(args, settings)
    except (DatabaseConfigError, StoreError, ValueError) as exc:
        print(f"voxline: error: {exc}", file=sys.stderr)
        return 1
    except (SQLAlchemyError, OSError) as exc:
        print(f"voxline: database error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voxline",
        description="Self-hostable voice-agent server. Settings come from VOXLINE_* "
        "environment variables or a .env file.",
    )
    parser.add_argument("--version", action="version", version=f"voxline {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    serve = commands.add_parser(
        "serve",
        help="run the server",
        description="Run the HTTP and WebSocket server. Migrates the database first and, on "
        "the very first start, creates a demo workspace, API key and agent. SIGTERM or "
        "SIGINT drains live calls (see docs/operations.md); a second one ends them at once.",
    )
    serve.add_argument("--host", help="interface to bind (default: VOXLINE_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: VOXLINE_PORT or 8000)")
    serve.set_defaults(command=_serve)

    keys = commands.add_parser("keys", help="manage API keys", description="Manage API keys.")
    key_commands = keys.add_subparsers(title="commands", metavar="COMMAND", required=True)
    create = key_commands.add_parser(
        "create",
        help="create an API key and print it (once)",
        description="Create an API key for a workspace (created if missing) and print it on "
        "stdout. It cannot be shown again: only its hash is stored.",
    )
    create.add_argument("--workspace", default="demo", help="workspace name (default: demo)")
    create.set_defaults(command=_run_async(_keys_create))
    list_keys = key_commands.add_parser(
        "list", help="list a workspace's keys", description="List a workspace's API keys."
    )
    list_keys.add_argument("--workspace", default="demo", help="workspace name (default: demo)")
    list_keys.set_defaults(command=_run_async(_keys_list))
    revoke = key_commands.add_parser(
        "revoke", help="revoke an API key", description="Revoke an API key by its id (key_...)."
    )
    revoke.add_argument("key_id", help="the key's id, as shown by 'voxline keys list'")
    revoke.set_defaults(command=_run_async(_keys_revoke))

    agents = commands.add_parser("agents", help="inspect agents", description="Inspect agents.")
    agent_commands = agents.add_subparsers(title="commands", metavar="COMMAND", required=True)
    list_agents = agent_commands.add_parser(
        "list", help="list agents", description="List agents, newest first."
    )
    list_agents.add_argument("--workspace", help="only this workspace's agents (default: all)")
    list_agents.set_defaults(command=_run_async(_agents_list))

    db = commands.add_parser("db", help="database maintenance", description="Database.")
    db_commands = db.add_subparsers(title="commands", metavar="COMMAND", required=True)
    db_upgrade = db_commands.add_parser(
        "upgrade",
        help="apply pending migrations",
        description="Migrate the database to the latest schema (the server also does this "
        "at start-up).",
    )
    db_upgrade.set_defaults(command=_run_async(_db_upgrade))

    cli_call.register(commands)
    cli_tasks.register(commands)
    return parser


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from voxline.api.app import create_app
    from voxline.serve import DrainingServer

    overrides = {name: value for name, value in (("host", args.host), ("port", args.port)) if value}
    settings = settings.model_copy(update=overrides)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    app = create_app(settings, server_process=True)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level=settings.log_level
    )
    log_redaction.install()  # after uvicorn configured its loggers
    DrainingServer(config, app).run()
    return 0


AsyncCommand = Callable[[argparse.Namespace, Database], Awaitable[int]]


def _run_async(command: AsyncCommand) -> Command:
    """A command that runs `command` against the migrated database."""

    def run(args: argparse.Namespace, settings: Settings) -> int:
        async def with_database() -> int:
            database = Database(settings.resolved_database_url())
            try:
                await upgrade(database)
                return await command(args, database)
            finally:
                await database.dispose()

        return asyncio.run(with_database())

    return run


async def _keys_create(args: argparse.Namespace, database: Database) -> int:
    async with database.transaction() as db:
        workspace, created = await get_or_create_workspace(db, args.workspace)
        key = await create_api_key(db, workspace.id)
    if created:
        print(f"Created workspace {workspace.name!r} ({workspace.id}).", file=sys.stderr)
    print(
        f"Created API key {key.record.id} for workspace {workspace.name!r}. "
        "It is shown only this once:",
        file=sys.stderr,
    )
    print(key.secret, flush=True)
    return 0


async def _keys_list(args: argparse.Namespace, database: Database) -> int:
    async with database.transaction() as db:
        workspace = await get_workspace_by_name(db, args.workspace)
        if workspace is None:
            print(f"voxline: no workspace named {args.workspace!r}", file=sys.stderr)
            return 1
        keys = await list_api_keys(db, workspace.id)
    rows = [
        (
            key.id,
            f"{key.prefix}...",
            key.created_at.isoformat(timespec="seconds"),
            key.last_used_at.isoformat(timespec="seconds") if key.last_used_at else "never",
            "revoked" if key.revoked_at else "active",
        )
        for key in keys
    ]
    _print_table(("ID", "KEY", "CREATED", "LAST USED", "STATUS"), rows)
    return 0


async def _keys_revoke(args: argparse.Namespace, database: Database) -> int:
    async with database.transaction() as db:
        key = await revoke_api_key(db, args.key_id)
    print(f"Revoked API key {key.id} ({key.prefix}...).", file=sys.stderr)
    return 0


async def _agents_list(args: argparse.Namespace, database: Database) -> int:
    statement = (
        select(AgentRow, Workspace.name)
        .join(Workspace, Workspace.id == AgentRow.workspace_id)
        .order_by(AgentRow.id.desc())
    )
    if args.workspace is not None:
        statement = statement.where(Workspace.name == args.workspace)
    async with database.transaction() as db:
        result = await db.execute(statement)
        agents = [(row, workspace) for row, workspace in result]
    rows = []
    for row, workspace in agents:
        spec = agent_spec(row)
        providers = f"{spec.stt.provider}/{spec.llm.provider}/{spec.tts.provider}"
        rows.append((row.id, workspace, row.name, providers))
    _print_table(("ID", "WORKSPACE", "NAME", "STT/LLM/TTS"), rows)
    return 0


async def _db_upgrade(_args: argparse.Namespace, database: Database) -> int:
    revisions = ", ".join(sorted(await current_revisions(database)))
    print(f"Database is at revision {revisions}.", file=sys.stderr)
    return 0


def _print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    for line in (header, *rows):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)))


if __name__ == "__main__":
    sys.exit(main())
