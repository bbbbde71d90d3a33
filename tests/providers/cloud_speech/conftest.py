import pytest


@pytest.fixture(autouse=True)
def _local_fakes(loopback_egress: None) -> None:
    """The fakes here listen on 127.0.0.1."""
