"""Providers that can run at the transport's rate are opened at it (no resampling round trip)."""

from __future__ import annotations

from voxline.agent_spec import ScriptedLlm, ScriptedStt, ScriptedTts
from voxline.providers.base import ProviderSet, SttSession, TtsSession
from voxline.providers.scripted import (
    ScriptedLanguageModel,
    ScriptedSpeechToText,
    ScriptedTextToSpeech,
)
from voxline.runtime.provider_connections import ProviderConnections


class _RateSelectableStt(ScriptedSpeechToText):
    sample_rates = (8000, 16000)

    def __init__(self) -> None:
        super().__init__(ScriptedStt())
        self.opened_at: list[int | None] = []

    async def open(self, sample_rate: int | None = None) -> SttSession:
        self.opened_at.append(sample_rate)
        return await super().open()


class _RateSelectableTts(ScriptedTextToSpeech):
    sample_rates = (8000, 16000)

    def __init__(self) -> None:
        super().__init__(ScriptedTts())
        self.opened_at: list[int | None] = []

    async def open(self, sample_rate: int | None = None) -> TtsSession:
        self.opened_at.append(sample_rate)
        return await super().open()


async def test_rate_selectable_providers_open_at_the_phone_rate() -> None:
    stt, tts = _RateSelectableStt(), _RateSelectableTts()
    providers = ProviderSet(stt=stt, llm=ScriptedLanguageModel(ScriptedLlm()), tts=tts)
    connections = ProviderConnections(providers, input_rate=8000, output_rate=8000)
    connections.start()
    await connections.stt()
    await connections.tts()
    await connections.aclose()
    assert connections.stt_rate == 8000
    assert stt.opened_at == [8000]
    assert tts.opened_at == [8000]


async def test_other_providers_keep_their_native_rate() -> None:
    providers = ProviderSet(
        stt=ScriptedSpeechToText(ScriptedStt()),
        llm=ScriptedLanguageModel(ScriptedLlm()),
        tts=ScriptedTextToSpeech(ScriptedTts()),
    )
    connections = ProviderConnections(providers, input_rate=8000, output_rate=8000)
    assert connections.stt_rate == 16000


async def test_an_unsupported_transport_rate_falls_back_to_the_native_rate() -> None:
    stt = _RateSelectableStt()
    providers = ProviderSet(
        stt=stt, llm=ScriptedLanguageModel(ScriptedLlm()), tts=_RateSelectableTts()
    )
    connections = ProviderConnections(providers, input_rate=48000, output_rate=48000)
    assert connections.stt_rate == stt.sample_rate


class _MulawStt(_RateSelectableStt):
    async def open_mulaw(self) -> SttSession:
        self.opened_at.append(-1)
        return await ScriptedSpeechToText.open(self)


async def test_a_mulaw_recognizer_takes_a_phone_call_as_is() -> None:
    stt = _MulawStt()
    providers = ProviderSet(
        stt=stt, llm=ScriptedLanguageModel(ScriptedLlm()), tts=_RateSelectableTts()
    )
    connections = ProviderConnections(providers, input_rate=8000, output_rate=8000)
    await connections.stt()
    await connections.aclose()
    assert (connections.stt_rate, connections.stt_mulaw) == (8000, True)
    assert stt.opened_at == [-1]


async def test_a_mulaw_recognizer_gets_pcm_on_a_wideband_call() -> None:
    stt = _MulawStt()
    providers = ProviderSet(
        stt=stt, llm=ScriptedLanguageModel(ScriptedLlm()), tts=_RateSelectableTts()
    )
    connections = ProviderConnections(providers, input_rate=16000, output_rate=16000)
    await connections.stt()
    await connections.aclose()
    assert (connections.stt_rate, connections.stt_mulaw) == (16000, False)
    assert stt.opened_at == [16000]
