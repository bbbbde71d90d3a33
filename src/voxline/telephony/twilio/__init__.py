"""Twilio: TwiML, webhook signatures, the media-stream wire format, and the REST calls."""
