"""The single-use check for signed tokens (Twilio relay tokens, browser session tokens),
shared by every process through the database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from voxline.store.database import Database
from voxline.store.models import RelayTokenUse
from voxline.store.types import utcnow


async def use_token_once(database: Database, token_id: str, expires_at: datetime) -> bool:
    """True the first time the token `token_id` is presented, False on every reuse (in any
    process).

    The row is kept until the token expires, after which the token is refused for its expiry
    anyway; expired rows are pruned on the way.
    """
    try:
        async with database.transaction() as db:
            await db.execute(delete(RelayTokenUse).where(RelayTokenUse.expires_at < utcnow()))
            db.add(RelayTokenUse(token_id=token_id, expires_at=expires_at))
    except IntegrityError:
        return False
    return True
