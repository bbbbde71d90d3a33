"""`voxline tasks create|list|show|cancel` (outbound calls, straight on the database),
`voxline workspaces call-limit` (a workspace's cap on live outbound calls) and
`voxline dispatcher` (the outbound dispatcher alone, for deployments that run it apart)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime

import httpx
from pydantic import ValidationError

from voxline.api.tasks import TaskCreate
from voxline.config import Settings
from voxline.dispatch.cancel import cancel_task
from voxline.dispatch.dispatcher import Dispatcher
from voxline.dispatch.views import task_view
from voxline.store import tasks as task_store
from voxline.store.database import Database
from voxline.store.errors import NotFound
from voxline.store.migrate import upgrade
from voxline.store.models import AgentRow
from voxline.store.pagination import MAX_PAGE_SIZE
from voxline.store.task_state import TaskStatus
from voxline.store.workspaces import get_workspace_by_name
from voxline.telephony.twilio.rest import TwilioRestClient

TasksCommand = Callable[[argparse.Namespace, Settings, Database], Awaitable[int]]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `tasks` and `dispatcher` to the `voxline` command line."""
    tasks = commands.add_parser(
        "tasks", help="outbound calls", description="Create, list, inspect and cancel tasks."
    )
    task_commands = tasks.add_subparsers(title="commands", metavar="COMMAND", required=True)
    create = task_commands.add_parser(
        "create",
        help="queue an outbound call",
        description="Queue one outbound call; the dispatcher of a running server places it.",
    )
    create.add_argument("--agent", required=True, help="the agent (agent_...)")
    create.add_argument("--to", required=True, help="the callee, E.164 (+14155550123)")
    create.add_argument("--from", dest="from_", required=True, help="your Twilio number, E.164")
    create.add_argument("--instance", help="the person's context (inst_...)")
    create.add_argument("--at", help="when to call, ISO 8601 with an offset (default: now)")
    create.add_argument("--max-attempts", type=int, default=1, help="calls at most (1-10)")
    create.add_argument(
        "--retry-on",
        nargs="*",
        default=[],
        choices=["busy", "no_answer", "failed", "voicemail"],
        help="outcomes that call again",
    )
    create.add_argument("--backoff", type=int, default=600, help="seconds between attempts")
    create.add_argument(
        "--machine-detection", choices=["off", "hang_up", "leave_message"], default="off"
    )
    create.add_argument("--voicemail-message", help="said after the beep (leave_message)")
    create.add_argument("--ring-timeout", type=int, default=30, help="seconds to ring")
    create.add_argument("--metadata", help="a JSON object echoed in webhooks")
    create.set_defaults(command=_with_database(_create))

    list_tasks = task_commands.add_parser(
        "list", help="list tasks", description="List tasks, newest first."
    )
    list_tasks.add_argument("--workspace", help="only this workspace's tasks (by name)")
    list_tasks.add_argument("--status", choices=[status.value for status in TaskStatus])
    list_tasks.add_argument("--agent", help="only this agent's tasks")
    list_tasks.add_argument("--batch", help="only this batch's tasks")
    list_tasks.add_argument("--limit", type=int, default=20, help=f"at most (1-{MAX_PAGE_SIZE})")
    list_tasks.set_defaults(command=_with_database(_list))

    show = task_commands.add_parser(
        "show", help="show a task as JSON", description="Print a task and its attempts as JSON."
    )
    show.add_argument("task_id", help="task_...")
    show.set_defaults(command=_with_database(_show))

    cancel = task_commands.add_parser(
        "cancel",
        help="cancel a task",
        description="Cancel a task: a waiting one never dials, a live call is hung up.",
    )
    cancel.add_argument("task_id", help="task_...")
    cancel.set_defaults(command=_with_database(_cancel))

    workspaces = commands.add_parser(
        "workspaces", help="workspace settings", description="Workspace settings."
    )
    workspace_commands = workspaces.add_subparsers(
        title="commands", metavar="COMMAND", required=True
    )
    limit = workspace_commands.add_parser(
        "call-limit",
        help="show or set a workspace's cap on live outbound calls",
        description="Show, or with a number set, how many outbound calls the workspace may "
        "have live at once across every process (default 10).",
    )
    limit.add_argument("--workspace", default="demo", help="workspace name (default: demo)")
    limit.add_argument("calls", type=int, nargs="?", help="the new cap (1-10000)")
    limit.set_defaults(command=_with_database(_call_limit))

    dispatcher = commands.add_parser(
        "dispatcher",
        help="run the outbound dispatcher alone",
        description="Dial due tasks from the shared database without serving the API (run "
        "servers with VOXLINE_DISPATCHER_ENABLED=false if only this process should dial).",
    )
    dispatcher.set_defaults(command=_run_dispatcher)


def _with_database(
    command: TasksCommand,
) -> Callable[[argparse.Namespace, Settings], int]:
    def run(args: argparse.Namespace, settings: Settings) -> int:
        async def go() -> int:
            database = Database(settings.resolved_database_url())
            try:
                await upgrade(database)
                return await command(args, settings, database)
            finally:
                await database.dispose()

        return asyncio.run(go())

    return run


async def _create(args: argparse.Namespace, settings: Settings, database: Database) -> int:
    body: dict[str, object] = {
        "agentId": args.agent,
        "to": args.to,
        "from": args.from_,
        "instanceId": args.instance,
        "retry": {
            "maxAttempts": args.max_attempts,
            "on": args.retry_on,
            "backoffSeconds": args.backoff,
        },
        "machineDetection": args.machine_detection,
        "voicemailMessage": args.voicemail_message,
        "ringTimeoutSeconds": args.ring_timeout,
        "metadata": json.loads(args.metadata) if args.metadata else {},
    }
    if args.at:
        body["scheduledAt"] = args.at
    try:
        request = TaskCreate.model_validate(body)
    except ValidationError as exc:
        print(f"voxline: invalid task:\n{exc}", file=sys.stderr)
        return 2
    async with database.transaction() as db:
        agent = await db.get(AgentRow, request.agent_id)
        if agent is None:
            raise NotFound("agent", request.agent_id)
        (row,) = await task_store.create_tasks(
            db,
            workspace_id=agent.workspace_id,
            agent_id=agent.id,
            from_number=request.from_number,
            tasks=[
                task_store.NewTask(
                    request.to_number, request.instance_id, request.variables, request.metadata
                )
            ],
            options=request.options(),
            scheduled_at=request.scheduled_at,
        )
    print(f"Queued {row.id} to {row.to_number} at {_when(row.next_attempt_at)}.", file=sys.stderr)
    print(row.id)
    return 0


async def _list(args: argparse.Namespace, settings: Settings, database: Database) -> int:
    if not 1 <= args.limit <= MAX_PAGE_SIZE:
        raise ValueError(f"--limit is 1 to {MAX_PAGE_SIZE}")
    async with database.transaction() as db:
        workspace_ids: list[str] | None = None
        if args.workspace is not None:
            workspace = await get_workspace_by_name(db, args.workspace)
            if workspace is None:
                raise ValueError(f"no workspace named {args.workspace!r}")
            workspace_ids = [workspace.id]
        rows = await task_store.recent_tasks(
            db,
            workspace_ids=workspace_ids,
            status=TaskStatus(args.status) if args.status else None,
            agent_id=args.agent,
            batch_id=args.batch,
            limit=args.limit,
        )
    table = [
        (row.id, row.status, row.to_number, str(row.attempt_count), _when(row.next_attempt_at))
        for row in rows
    ]
    header = ("ID", "STATUS", "TO", "ATTEMPTS", "NEXT ATTEMPT")
    widths = [max(len(cell) for cell in column) for column in zip(header, *table, strict=True)]
    for line in (header, *table):
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
    return 0


async def _show(args: argparse.Namespace, settings: Settings, database: Database) -> int:
    async with database.transaction() as db:
        row = await task_store.get_task(db, args.task_id)
        attempts = await task_store.attempts_of(db, [row.id])
    print(task_view(row, attempts[row.id]).model_dump_json(by_alias=True, indent=2))
    return 0


async def _cancel(args: argparse.Namespace, settings: Settings, database: Database) -> int:
    async with database.transaction() as db:
        workspace_id = (await task_store.get_task(db, args.task_id)).workspace_id
    async with _twilio(settings) as twilio:
        await cancel_task(database, twilio, workspace_id, args.task_id)
    async with database.transaction() as db:
        row = await task_store.get_task(db, args.task_id)
    print(f"Task {row.id} is {row.status}.", file=sys.stderr)
    return 0


async def _call_limit(args: argparse.Namespace, settings: Settings, database: Database) -> int:
    if args.calls is not None and not 1 <= args.calls <= 10_000:
        raise ValueError("a call limit is 1 to 10000")
    async with database.transaction() as db:
        workspace = await get_workspace_by_name(db, args.workspace)
        if workspace is None:
            raise ValueError(f"no workspace named {args.workspace!r}")
        if args.calls is not None:
            workspace.max_concurrent_calls = args.calls
        cap = workspace.max_concurrent_calls
    print(f"Workspace {args.workspace!r} may have {cap} outbound calls live at once.")
    return 0


def _run_dispatcher(args: argparse.Namespace, settings: Settings) -> int:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )

    async def go() -> None:
        database = Database(settings.resolved_database_url())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            await upgrade(database)
            async with _twilio(settings) as twilio, httpx.AsyncClient(timeout=10.0) as http:
                dispatcher = Dispatcher(settings, database, twilio, http)
                dispatcher.start()
                await stop.wait()
                await dispatcher.aclose()
        finally:
            await database.dispose()

    asyncio.run(go())
    return 0


@asynccontextmanager
async def _twilio(settings: Settings) -> AsyncIterator[TwilioRestClient | None]:
    if settings.twilio_account_sid is None or settings.twilio_auth_token is None:
        yield None
        return
    async with TwilioRestClient(
        settings.twilio_account_sid,
        settings.twilio_auth_token.get_secret_value(),
        settings.twilio_api_base_url,
    ) as client:
        yield client


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else "-"
