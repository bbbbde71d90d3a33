import logging

import pytest

from voxline import log_redaction


def test_tokens_in_websocket_paths_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    log_redaction.install()
    logger = logging.getLogger("uvicorn.error")
    with caplog.at_level(logging.INFO, logger="uvicorn.error"):
        logger.info(
            '%s - "WebSocket %s" [accepted]',
            "127.0.0.1:5000",
            "/v1/agents/agent_1/session?token=abc.def&x=1",
        )
    assert "abc.def" not in caplog.text
    assert "token=[redacted]&x=1" in caplog.text


def test_other_query_parameters_are_kept() -> None:
    assert log_redaction.redact("/v1/sessions?agentId=agent_1") == "/v1/sessions?agentId=agent_1"
