"""The REST calls reconciliation relies on, against the simulated Twilio."""

from __future__ import annotations

from datetime import UTC, datetime

from voxline.simulator.twilio_cloud import Callee, TwilioCloud
from voxline.telephony.twilio.rest import TwilioRestClient

FROM = "+14155550100"


async def test_list_calls_finds_a_created_call_by_to_from_and_day() -> None:
    async with TwilioCloud(callee=Callee(max_seconds=0.5)) as cloud:
        client = TwilioRestClient(cloud.account_sid, cloud.auth_token, cloud.base_url)
        async with client:
            created = await client.create_call(
                "+15550001000",
                FROM,
                "http://127.0.0.1:9/connect",
                "http://127.0.0.1:9/s",
                ["completed"],
            )
            await client.create_call(
                "+15550002000",
                FROM,
                "http://127.0.0.1:9/connect",
                "http://127.0.0.1:9/s",
                ["completed"],
            )
            today = datetime.now(UTC).date()
            listed = await client.list_calls("+15550001000", FROM, today)
            assert [call.sid for call in listed] == [created.sid]
            assert listed[0].date_created is not None
            fetched = await client.fetch_call(created.sid)
            assert fetched.sid == created.sid and fetched.to == "+15550001000"
