"""Twilio's callbacks for outbound calls (called by Twilio, not by API consumers).

- `POST /v1/sessions/twilio/task/{taskId}/connect`: Twilio fetches TwiML once the callee
  answers; we create the call's session, linked to the attempt, and connect its stream.
- `POST /v1/sessions/twilio/task/{taskId}/status`: status callbacks and async machine
  verdicts; each recorded once, late and out-of-order ones never undoing progress.
Both check `X-Twilio-Signature` first (403, nothing changed) and answer 404 for an unknown task.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request, Response

from voxline.api.errors import error_responses
from voxline.api.twilio_common import check_twilio_signature, first, issue_stream, twilio_form
from voxline.app_state import AppState
from voxline.dispatch import machine
from voxline.dispatch.outcomes import apply_status_callback, find_attempt
from voxline.store import sessions as session_store
from voxline.store import tasks as task_store
from voxline.store.models import AgentRow
from voxline.store.session_state import Channel, Direction
from voxline.store.task_state import AttemptStatus, TaskStatus, is_forward
from voxline.telephony.twilio.twiml import say_and_hangup_twiml

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/sessions/twilio/task", tags=["twilio"])

_SORRY = "Sorry, this call cannot continue. Goodbye."
_FORM_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "description": "Twilio's callback parameters (CallSid, CallStatus, "
                    "SequenceNumber, AnsweredBy, ...), signed with X-Twilio-Signature.",
                    "additionalProperties": {"type": "string"},
                }
            }
        },
    }
}


@router.post(
    "/{task_id}/connect",
    summary="Twilio fetches the TwiML of an answered outbound call (Twilio only)",
    openapi_extra={
        **_FORM_BODY,
        "responses": {
            "200": {
                "description": "<Connect><Stream> with the signed relay parameter.",
                "content": {"application/xml": {"schema": {"type": "string"}}},
            }
        },
    },
    responses=error_responses(403, 404, 422),
    response_model=None,
)
async def connect(request: Request, task_id: str) -> Response:
    state: AppState = request.app.state.voxline
    params = await twilio_form(request)
    check_twilio_signature(request, state, params)
    call_sid = first(params, "CallSid")
    async with state.database.transaction() as db:
        task = await task_store.get_task(db, task_id, for_update=True)
        attempt = await find_attempt(db, task, call_sid)
        agent = await db.get(AgentRow, task.agent_id)
        if (
            attempt is None
            or agent is None
            or AttemptStatus(attempt.status).is_terminal
            or TaskStatus(task.status).is_terminal
        ):
            logger.warning("task %s: no live attempt for call %s; hanging up", task_id, call_sid)
            return _twiml(say_and_hangup_twiml(_SORRY))
        if attempt.session_id is None:
            session = await session_store.create_session(
                db,
                workspace_id=task.workspace_id,
                agent_id=task.agent_id,
                channel=Channel.PHONE,
                direction=Direction.OUTBOUND,
                instance_id=task.instance_id,
                from_number=task.from_number,
                to_number=task.to_number,
                call_sid=call_sid,
            )
            attempt.session_id = session.id
        if is_forward(AttemptStatus(attempt.status), AttemptStatus.IN_PROGRESS):
            task_store.set_attempt_status(attempt, AttemptStatus.IN_PROGRESS)
            task_store.set_task_status(task, TaskStatus.IN_PROGRESS)
        issued = issue_stream(
            state, attempt.session_id, agent, task.instance_id, task.from_number, task.to_number
        )
    return _twiml(issued.twiml)


@router.post(
    "/{task_id}/status",
    summary="Twilio's status callbacks and machine verdicts of an outbound call (Twilio only)",
    status_code=204,
    openapi_extra=_FORM_BODY,
    responses=error_responses(403, 404, 422),
    response_model=None,
)
async def status(request: Request, task_id: str) -> Response:
    state: AppState = request.app.state.voxline
    params = await twilio_form(request)
    check_twilio_signature(request, state, params)
    flat = {key: values[0] for key, values in params.items() if values}
    async with state.database.transaction() as db:
        task = await task_store.get_task(db, task_id, for_update=True)
        result = await apply_status_callback(db, task, flat)
    if result.machine_action is not None:
        engine = state.engine
        done = await machine.act(
            engine.live,
            engine.twilio,
            result.machine_action,
            result.session_id,
            result.call_sid,
            result.voicemail_message,
        )
        if done and result.call_sid is not None:
            await machine.clear_pending(state.database, result.call_sid)
    return Response(status_code=204)


def _twiml(xml: str) -> Response:
    return Response(xml, media_type="application/xml")
