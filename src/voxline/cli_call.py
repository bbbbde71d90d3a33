"""`voxline call`: place a simulated phone call on a running server, as a developer's phone.

The call arrives as Twilio would bring it (a signed voice webhook, with `--twilio-auth-token`)
or through the JSON API (with an API key), streams over the real media-stream WebSocket, and
speaks the caller's lines in real time. At the end it prints the conversation as the server
recorded it and the latency the caller heard.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from voxline.config import Settings
from voxline.store.seed import DEMO_KEY_FILE

if TYPE_CHECKING:
    from voxline.simulator.conversation import CallerLine, ListeningPolicy
    from voxline.simulator.sessions import SessionRecord

_SESSION_WAIT_S = 10.0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `call` command to the `voxline` command line."""
    call = commands.add_parser(
        "call",
        help="place a simulated phone call on a running server",
        description="Place a simulated Twilio call on a running server: speak the caller's "
        "lines in real time over the media stream, then print the conversation as the server "
        "recorded it and the latency the caller heard. With an API key (default: the demo key "
        "in the data directory) the call is created through the API; with "
        "--twilio-auth-token it arrives as Twilio's signed voice webhook.",
    )
    call.add_argument("--agent", required=True, help="the agent to call (agent_...)")
    call.add_argument("--server", help="the server's base URL (default: VOXLINE_PUBLIC_BASE_URL)")
    call.add_argument("--api-key", help="an API key (default: DATA_DIR/demo-api-key if present)")
    call.add_argument(
        "--twilio-auth-token",
        help="place the call as Twilio would, signing the voice webhook with this token "
        "(the server's VOXLINE_TWILIO_AUTH_TOKEN)",
    )
    lines = call.add_mutually_exclusive_group()
    lines.add_argument(
        "--script",
        type=Path,
        help="a text file, one caller line per line (blank lines and #comments skipped), "
        "spoken with the local Piper voice",
    )
    lines.add_argument("--wav", type=Path, nargs="+", help="WAV files to say, one per caller turn")
    call.add_argument(
        "--barge-in-after",
        type=float,
        metavar="SECONDS",
        help="say each next line this long into the agent's answer, talking over it",
    )
    call.add_argument(
        "--silence-ms",
        type=float,
        default=800.0,
        help="agent silence that ends its answer (default: 800)",
    )
    call.add_argument(
        "--answer-timeout",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="longest wait for an answer to start (default: 20)",
    )
    call.add_argument("--save-wav", type=Path, help="write the call as a stereo WAV here")
    call.set_defaults(command=run_call)


def run_call(args: argparse.Namespace, settings: Settings) -> int:
    """The `call` command; returns the exit status (errors are printed, never raised)."""
    from websockets.exceptions import WebSocketException

    from voxline.providers.base import ProviderError
    from voxline.simulator.conversation import ListeningPolicy
    from voxline.simulator.dial import DialError
    from voxline.simulator.sessions import SessionApiError
    from voxline.simulator.twilio_peer import CallEnded

    api_key = args.api_key or _demo_key(settings.data_dir)
    if api_key is None and args.twilio_auth_token is None:
        print(
            "voxline call: no API key: pass --api-key, or --twilio-auth-token to place the "
            f"call as Twilio would (no {settings.data_dir / DEMO_KEY_FILE} found)",
            file=sys.stderr,
        )
        return 2
    try:
        policy = ListeningPolicy(
            silence_ms=args.silence_ms,
            answer_timeout_s=args.answer_timeout,
            barge_in_after_s=args.barge_in_after,
        )
        lines = _caller_lines(args)
        server = args.server or settings.resolved_public_base_url()
        text = asyncio.run(_place_call(args, server, api_key, lines, policy))
    except (DialError, SessionApiError, ProviderError, CallEnded, ValueError, OSError) as exc:
        print(f"voxline call: {exc}", file=sys.stderr)
        return 1
    except (WebSocketException, RuntimeError) as exc:
        print(f"voxline call: the media stream failed: {exc}", file=sys.stderr)
        return 1
    print(text)
    return 0


def _caller_lines(args: argparse.Namespace) -> list[CallerLine]:
    from voxline.simulator.conversation import CallerLine
    from voxline.simulator.speech import read_caller_wav, synthesize_caller_speech

    if args.wav:
        return [CallerLine(path.name, read_caller_wav(path)) for path in args.wav]
    if args.script is None:
        return []
    texts = [
        line.strip()
        for line in args.script.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not texts:
        raise ValueError(f"{args.script} holds no caller lines")
    return [CallerLine(text, synthesize_caller_speech(text)) for text in texts]


async def _place_call(
    args: argparse.Namespace,
    server: str,
    api_key: str | None,
    lines: list[CallerLine],
    policy: ListeningPolicy,
) -> str:
    import httpx

    from voxline.simulator.conversation import converse
    from voxline.simulator.dial import dial_as_twilio, dial_with_api_key
    from voxline.simulator.report import build_report, format_report
    from voxline.simulator.sessions import SessionsApi
    from voxline.simulator.twilio_peer import SimulatedTwilioCall

    async with httpx.AsyncClient(timeout=10.0) as http:
        if args.twilio_auth_token is not None:
            dialed = await dial_as_twilio(http, server, args.agent, args.twilio_auth_token)
        else:
            assert api_key is not None
            dialed = await dial_with_api_key(http, server, args.agent, api_key)
        call = SimulatedTwilioCall(
            dialed.stream_url,
            relay=dialed.relay,
            call_sid=dialed.call_sid,
            account_sid=dialed.account_sid,
            wav_path=args.save_wav,
        )
        async with call:
            outcome = await converse(call, lines, policy)
        session: SessionRecord | None = None
        if api_key is not None:
            sessions = SessionsApi(http, server, api_key)
            session_id = dialed.session_id or await sessions.find_by_call_sid(
                args.agent, dialed.call_sid
            )
            if session_id is not None:
                session = await sessions.wait_finished(session_id, _SESSION_WAIT_S)
        return format_report(build_report(call, lines, outcome, session))


def _demo_key(data_dir: Path) -> str | None:
    path = data_dir / DEMO_KEY_FILE
    try:
        key = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return key or None
