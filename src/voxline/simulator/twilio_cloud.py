"""A local Twilio for outbound calls: the Calls REST API, and Twilio's part in every call.

Point a voxline server at it with `VOXLINE_TWILIO_API_BASE_URL` (plus the account SID and
auth token it prints) and each call the server creates is played against the server, as
Twilio would: signed status callbacks, the signed TwiML fetch from `Url` once answered, the
`<Connect><Stream>` media stream opened as the callee (scripted or Piper-voiced lines, then a
hang-up), machine detection verdicts, and a `completed` callback with the call's duration.

From Python (tests, benchmarks):

    async with TwilioCloud(outcomes={"+15550001111": "busy",
                                     "+15550002222": ["no-answer", "answer"]},
                           callee=Callee(lines=["Yes, that works for me."])) as cloud:
        # server env: VOXLINE_TWILIO_API_BASE_URL=cloud.base_url,
        #             VOXLINE_TWILIO_ACCOUNT_SID=cloud.account_sid,
        #             VOXLINE_TWILIO_AUTH_TOKEN=cloud.auth_token
        ...
        call = await cloud.wait_ended(cloud.creates[0].call_sid, timeout=10)
        cloud.status_callbacks(call.sid)     # what the server was sent, in delivery order
        call.streams[0].agent_track()        # what the callee heard

- Outcomes per destination number (`outcomes`, `set_outcome`): `answer` (a person),
  `busy`, `no-answer`, `failed`, `voicemail` (an answering machine: greeting, beep, then it
  records), or refused at create: `invalid` (21211), `unreachable` (21214). A list is used
  one entry per call to that number, its last entry repeating. Other numbers get
  `default_outcome`.
- What the callee does: `callee` (everyone) and `callees` (per number), see `Callee`.
- Delays: `timing` (`Timing`: ring time, no-answer ring, detection delay); `cps` paces
  calls leaving the queue as Twilio's calls-per-second limit does (None: no limit).
- `owned_numbers`: the account's numbers; a call from any other is refused (21210).
  None: any `From` is accepted.
- Unruly callbacks: `chaos=CallbackChaos(duplicate=0.3, reorder=0.3, seed=1)`.
- Injected REST failures: `fail_next(429)`, `fail_next(503, times=2)`.
- `deliver_to="http://127.0.0.1:8000"` sends every request and stream to that origin while
  signing the URL as the server gave it (a server whose public base URL is a tunnel).
- Records: `creates` (every create request, with arrival time), `callbacks` (every request
  made to the server, with its answer), `calls` (by SID), `live_history` and `max_live`
  (calls created and not yet ended, over time), `max_creates_per_second()`.

From a shell, beside `voxline serve` (see docs/outbound-simulator.md):

    python -m voxline.simulator.twilio_cloud --port 8900 --server http://127.0.0.1:8000 \\
        --auth-token secret --outcome +15550001111=busy --say "Hello?"

Why one module of ~510 lines: it is Twilio's Calls API as one fake, kept whole so that the
REST surface and each call's life (callbacks, fetch, stream) read in one place.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import secrets
import socket
import sys
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType

import httpx
import uvicorn

from voxline.audio.pcm import Pcm16
from voxline.providers.base import ProviderUnavailable
from voxline.simulator.speech import CallerSpeechError, synthesize_caller_speech
from voxline.simulator.twilio_callbacks import CallbackChaos, CallbackRecord, CallbackSender, rebase
from voxline.simulator.twilio_callee import (
    Callee,
    CallPlayer,
    Line,
    Outcome,
    SpokenCallee,
    Timing,
    beep,
    synthetic_greeting,
)
from voxline.simulator.twilio_calls import CallRequest, CreateRefused, OutboundCall
from voxline.simulator.twilio_rest_api import CallsApi, CreateRecord, Endpoint

__all__ = [
    "CallbackChaos",
    "CallbackRecord",
    "Callee",
    "CreateRecord",
    "OutboundCall",
    "Outcome",
    "Timing",
    "TwilioCloud",
]

logger = logging.getLogger(__name__)

OutcomeRule = Outcome | str | Sequence[Outcome | str]

_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_REFUSALS = {
    Outcome.INVALID: (21211, "Invalid 'To' Phone Number: {to}"),
    Outcome.UNREACHABLE: (21214, "'To' phone number cannot be reached: {to}"),
}


class TwilioCloud:
    """The simulated Twilio; use as `async with` (or `start()` / `stop()`)."""

    def __init__(
        self,
        *,
        account_sid: str | None = None,
        auth_token: str | None = None,
        outcomes: Mapping[str, OutcomeRule] | None = None,
        default_outcome: Outcome | str = Outcome.ANSWER,
        callee: Callee | None = None,
        callees: Mapping[str, Callee] | None = None,
        timing: Timing | None = None,
        chaos: CallbackChaos | None = None,
        cps: float | None = None,
        owned_numbers: Iterable[str] | None = None,
        deliver_to: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if account_sid is not None and not _ACCOUNT_SID.match(account_sid):
            raise ValueError(f"not a Twilio account SID (AC + 32 hex digits): {account_sid!r}")
        if cps is not None and cps <= 0:
            raise ValueError("cps must be positive (or None for no pace)")
        self.account_sid = account_sid or "AC" + secrets.token_hex(16)
        self.auth_token = auth_token or secrets.token_hex(16)
        self.base_url = ""
        self.calls: dict[str, OutboundCall] = {}
        self.live_history: list[tuple[float, int]] = []
        self.max_live = 0
        self._rules: dict[str, list[Outcome]] = {}
        for number, rule in (outcomes or {}).items():
            self.set_outcome(number, rule)
        self._default_outcome = Outcome(default_outcome)
        self._callee = callee or Callee()
        self._callees = dict(callees or {})
        self._spoken: dict[int, SpokenCallee] = {}
        self._timing = timing or Timing()
        self._chaos = chaos or CallbackChaos()
        self._cps = cps
        self._owned = None if owned_numbers is None else frozenset(owned_numbers)
        self._deliver_to = deliver_to
        self._host = host
        self._port = port
        self._next_dial = 0.0
        self._live: set[str] = set()
        self._players: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._t0 = 0.0
        self._api = CallsApi(self.account_sid, self.auth_token, self, self._now)
        self._sender: CallbackSender | None = None
        self._http: httpx.AsyncClient | None = None
        self._server: uvicorn.Server | None = None
        self._serving: asyncio.Task[None] | None = None

    # --- life cycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> TwilioCloud:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Voice the callees' lines, then serve the API on `host`:`port` (0: a free port)."""
        self._loop = asyncio.get_running_loop()
        self._t0 = self._loop.time()
        for callee in (self._callee, *self._callees.values()):
            await self._speak(callee)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, self._port))
        except OSError:
            sock.close()
            raise
        # A fresh connection per request: a pooled one that the server closed while idle
        # would fail the next callback with a ReadError, which Twilio does not do.
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(15.0),
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=0),
        )
        self._sender = CallbackSender(
            self._http, self.auth_token, self._now, self._chaos, self._deliver_to
        )
        # Idle connections outlive the clients' pools (httpx drops them after 5 s), so a
        # create is never sent on a connection being closed, which would leave its fate unknown.
        config = uvicorn.Config(
            self._api.app,
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_keep_alive=75,
        )
        self._server = uvicorn.Server(config)
        self._serving = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._serving.done():
                await self._serving
                raise RuntimeError("the simulated Twilio API stopped while starting")
            await asyncio.sleep(0.01)
        host, port = sock.getsockname()[:2]
        self.base_url = f"http://{host}:{port}"

    async def stop(self) -> None:
        """Stop serving; calls still going are cut off (their streams get `stop`)."""
        for task in list(self._players):
            task.cancel()
        await asyncio.gather(*self._players, return_exceptions=True)
        if self._sender is not None:
            await self._sender.aclose()
        if self._server is not None and self._serving is not None:
            self._server.should_exit = True
            await self._serving
        if self._http is not None:
            await self._http.aclose()

    async def serve_forever(self) -> None:
        """Run until the server is asked to exit (Ctrl-C from the command line)."""
        if self._serving is None:
            raise RuntimeError("start the simulator first")
        await asyncio.shield(self._serving)

    # --- configuration while running --------------------------------------------------------

    def set_outcome(self, number: str, rule: OutcomeRule) -> None:
        """What happens to the next calls to `number` (a list: one entry per call)."""
        outcomes = [Outcome(rule)] if isinstance(rule, str) else [Outcome(o) for o in rule]
        if not outcomes:
            raise ValueError(f"no outcome given for {number}")
        self._rules[number] = outcomes

    async def set_callee(self, number: str, callee: Callee) -> None:
        """Who answers calls to `number` from now on."""
        await self._speak(callee)
        self._callees[number] = callee

    def fail_next(
        self,
        status: int,
        times: int = 1,
        *,
        code: int | None = None,
        endpoint: Endpoint | None = "create",
    ) -> None:
        """Answer the next `times` requests to `endpoint` (None: any) with an error: 429
        (code 20429) or a 5xx."""
        self._api.fail_next(status, times, code=code, endpoint=endpoint)

    # --- records -----------------------------------------------------------------------------

    @property
    def creates(self) -> list[CreateRecord]:
        """Every create request received, refused ones included, in arrival order."""
        return self._api.creates

    @property
    def callbacks(self) -> list[CallbackRecord]:
        """Every request made to the server, in the order they were sent."""
        return [] if self._sender is None else self._sender.records

    def status_callbacks(self, call_sid: str) -> list[CallbackRecord]:
        """The status callbacks of one call, in delivery order."""
        return [r for r in self.callbacks if r.call_sid == call_sid and r.kind == "status"]

    def max_creates_per_second(self, window: float = 1.0) -> int:
        """The most calls accepted within any `window` seconds."""
        times = [record.received_at for record in self.creates if record.accepted]
        best, first = 0, 0
        for last, moment in enumerate(times):
            while moment - times[first] >= window:
                first += 1
            best = max(best, last - first + 1)
        return best

    async def wait_ended(self, call_sid: str, timeout: float) -> OutboundCall:  # noqa: ASYNC109
        """Wait until the call ended and its last callback went out."""
        call = self.calls.get(call_sid)
        if call is None:
            raise KeyError(f"no call {call_sid!r} was created here")
        async with asyncio.timeout(timeout):
            await call.ended.wait()
        return call

    async def wait_all_ended(self, timeout: float) -> None:  # noqa: ASYNC109
        """Wait until every call created so far has ended."""
        async with asyncio.timeout(timeout):
            for call in list(self.calls.values()):
                await call.ended.wait()

    # --- CallsBackend ------------------------------------------------------------------------

    def create_call(self, form: list[tuple[str, str]]) -> OutboundCall:
        request = CallRequest.from_form(form)
        if not _E164.match(request.to):
            raise CreateRefused(400, 21211, f"Invalid 'To' Phone Number: {request.to}")
        if not _E164.match(request.from_):
            raise CreateRefused(400, 21212, f"Invalid 'From' Phone Number: {request.from_}")
        if self._owned is not None and request.from_ not in self._owned:
            raise CreateRefused(
                400,
                21210,
                f"The source phone number provided, {request.from_}, is not yet verified for "
                "your account. You may only make calls from phone numbers that you've "
                "verified or purchased from Twilio.",
            )
        outcome = self._next_outcome(request.to)
        if outcome in _REFUSALS:
            code, message = _REFUSALS[outcome]
            raise CreateRefused(400, code, message.format(to=request.to))
        assert self._sender is not None
        call = OutboundCall(
            account_sid=self.account_sid, request=request, queue_seconds=self._dial_delay()
        )
        self.calls[call.sid] = call
        self._count_live(call.sid, started=True)
        player = CallPlayer(
            call,
            outcome,
            self._spoken[id(self._callees.get(request.to, self._callee))],
            self._timing,
            self._sender,
            dial_delay=call.queue_seconds,
            stream_target=self._stream_target,
            on_end=lambda ended: self._count_live(ended.sid, started=False),
        )
        task = asyncio.create_task(player.run(), name=f"twilio-call-{call.sid}")
        self._players.add(task)
        task.add_done_callback(self._players.discard)
        logger.info("%s created: %s -> %s (%s)", call.sid, request.from_, request.to, outcome)
        return call

    def find_call(self, sid: str) -> OutboundCall | None:
        return self.calls.get(sid)

    def all_calls(self) -> Iterable[OutboundCall]:
        return self.calls.values()

    # --- plumbing ----------------------------------------------------------------------------

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time() - self._t0

    def _next_outcome(self, number: str) -> Outcome:
        rule = self._rules.get(number)
        if not rule:
            return self._default_outcome
        return rule.pop(0) if len(rule) > 1 else rule[0]

    def _dial_delay(self) -> float:
        """How long a new call waits in the queue for its turn under the CPS pace."""
        if self._cps is None:
            return 0.0
        now = self._now()
        slot = max(now, self._next_dial)
        self._next_dial = slot + 1.0 / self._cps
        return slot - now

    def _stream_target(self, url: str) -> str:
        return url if self._deliver_to is None else rebase(url, self._deliver_to)

    def _count_live(self, sid: str, *, started: bool) -> None:
        if started:
            self._live.add(sid)
        else:
            self._live.discard(sid)
        self.live_history.append((self._now(), len(self._live)))
        self.max_live = max(self.max_live, len(self._live))

    async def _speak(self, callee: Callee) -> None:
        known = self._spoken.get(id(callee))
        if known is not None and known.callee is callee:
            return
        lines = tuple([await _pcm(line) for line in callee.lines])
        greeting = synthetic_greeting() if callee.greeting is None else await _pcm(callee.greeting)
        self._spoken[id(callee)] = SpokenCallee(callee, lines, greeting, beep())


async def _pcm(line: Line) -> Pcm16:
    if isinstance(line, str):
        return await asyncio.to_thread(synthesize_caller_speech, line)
    return line


# --- command line -----------------------------------------------------------------------------


def _parse_outcome(text: str) -> tuple[str, list[Outcome]]:
    number, sep, rule = text.partition("=")
    if not sep or not number or not rule:
        raise argparse.ArgumentTypeError(f"expected NUMBER=OUTCOME[,OUTCOME...], got {text!r}")
    try:
        return number, [Outcome(each.strip()) for each in rule.split(",")]
    except ValueError:
        choices = ", ".join(o.value for o in Outcome)
        raise argparse.ArgumentTypeError(
            f"unknown outcome in {text!r}; choose from {choices}"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m voxline.simulator.twilio_cloud",
        description="A local Twilio for outbound calls: point voxline at it with "
        "VOXLINE_TWILIO_API_BASE_URL and every call it places is played against it.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument(
        "--server",
        help="deliver callbacks and streams to this origin (e.g. http://127.0.0.1:8000) "
        "instead of the URLs' own host; signatures still cover the URLs as given",
    )
    parser.add_argument("--account-sid", help="default: a random AC... SID, printed at start")
    parser.add_argument("--auth-token", help="default: a random token, printed at start")
    parser.add_argument(
        "--outcome",
        action="append",
        type=_parse_outcome,
        default=[],
        metavar="NUMBER=OUTCOME[,OUTCOME...]",
        help="what happens to calls to NUMBER, one outcome per call, the last repeating: "
        + ", ".join(o.value for o in Outcome),
    )
    parser.add_argument("--default-outcome", type=Outcome, default=Outcome.ANSWER)
    parser.add_argument(
        "--say",
        action="append",
        default=[],
        metavar="TEXT",
        help="a line the callee says, one per agent turn, voiced by Piper (repeatable)",
    )
    parser.add_argument("--greeting", help="the voicemail greeting, voiced by Piper")
    parser.add_argument("--ring-seconds", type=float, default=2.0)
    parser.add_argument(
        "--no-answer-seconds",
        type=float,
        help="how long a no-answer number rings (default: the call's Timeout)",
    )
    parser.add_argument("--amd-seconds", type=float, default=1.0)
    parser.add_argument("--max-call-seconds", type=float, default=120.0)
    parser.add_argument("--cps", type=float, help="calls leaving the queue per second")
    parser.add_argument(
        "--owned-number",
        action="append",
        metavar="NUMBER",
        help="a number of the account (repeatable); calls from others are refused (21210)",
    )
    parser.add_argument("--duplicate", type=float, default=0.0, help="callback duplicate rate")
    parser.add_argument("--reorder", type=float, default=0.0, help="callback reorder rate")
    parser.add_argument("--seed", type=int, default=0)
    return parser


async def _run(args: argparse.Namespace) -> None:
    cloud = TwilioCloud(
        account_sid=args.account_sid,
        auth_token=args.auth_token,
        outcomes=dict(args.outcome),
        default_outcome=args.default_outcome,
        callee=Callee(
            lines=tuple(args.say), greeting=args.greeting, max_seconds=args.max_call_seconds
        ),
        timing=Timing(
            ring=args.ring_seconds, no_answer=args.no_answer_seconds, amd=args.amd_seconds
        ),
        chaos=CallbackChaos(duplicate=args.duplicate, reorder=args.reorder, seed=args.seed),
        cps=args.cps,
        owned_numbers=args.owned_number,
        deliver_to=args.server,
        host=args.host,
        port=args.port,
    )
    await cloud.start()
    try:
        print(
            f"Simulated Twilio at {cloud.base_url}. Start the server with:\n"
            f"  VOXLINE_TWILIO_API_BASE_URL={cloud.base_url}\n"
            f"  VOXLINE_TWILIO_ACCOUNT_SID={cloud.account_sid}\n"
            f"  VOXLINE_TWILIO_AUTH_TOKEN={cloud.auth_token}",
            flush=True,
        )
        await cloud.serve_forever()
    finally:
        await cloud.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    try:
        asyncio.run(_run(args))
    except KeyboardInterrupt:
        pass
    except (ProviderUnavailable, CallerSpeechError, ValueError, OSError) as exc:
        parser.exit(2, f"error: {exc}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
