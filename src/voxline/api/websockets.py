"""What the WebSocket endpoints (Twilio media streams, browser sessions) share."""

from __future__ import annotations

POLICY_VIOLATION = 1008
"""Close code for a refused socket: bad token, no valid start message, forbidden origin."""
