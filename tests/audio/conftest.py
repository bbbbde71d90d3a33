import pytest

from tests.helpers.speech import synthesize_speech
from voxline.audio.pcm import Pcm16

SENTENCE = "Hello, I would like to book a table for two people tonight, please."


@pytest.fixture(scope="session")
def speech_by_rate() -> dict[int, Pcm16]:
    """The same spoken sentence at both VAD rates."""
    return {rate: synthesize_speech(SENTENCE, rate) for rate in (8000, 16000)}
