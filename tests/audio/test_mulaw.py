import warnings

import numpy as np
import pytest

from voxline.audio.mulaw import decode_mulaw, encode_mulaw

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

EVERY_SAMPLE = np.arange(65536, dtype=np.uint16).view(np.int16)
EVERY_CODE = bytes(range(256))


def test_encode_matches_audioop_on_every_int16_sample() -> None:
    reference = audioop.lin2ulaw(EVERY_SAMPLE.astype("<i2").tobytes(), 2)
    assert encode_mulaw(EVERY_SAMPLE) == reference


def test_decode_matches_audioop_on_every_code() -> None:
    reference = np.frombuffer(audioop.ulaw2lin(EVERY_CODE, 2), dtype="<i2")
    np.testing.assert_array_equal(decode_mulaw(EVERY_CODE), reference)


def test_decoded_samples_survive_a_round_trip_unchanged() -> None:
    decoded = decode_mulaw(EVERY_CODE)
    np.testing.assert_array_equal(decode_mulaw(encode_mulaw(decoded)), decoded)


def test_round_trip_error_is_bounded_by_the_quantization_step() -> None:
    original = EVERY_SAMPLE.astype(np.int32)
    error = np.abs(decode_mulaw(encode_mulaw(EVERY_SAMPLE)).astype(np.int32) - original)
    # G.711 steps grow with the magnitude (8 near zero, 1024 in the top segment): about |x|/16.
    assert np.all(error <= np.abs(original) // 16 + 8)


def test_encode_accepts_a_strided_view() -> None:
    strided = EVERY_SAMPLE[::7]
    assert encode_mulaw(strided) == encode_mulaw(strided.copy())


def test_decode_of_empty_payload_is_empty_pcm() -> None:
    decoded = decode_mulaw(b"")
    assert decoded.dtype == np.int16
    assert decoded.shape == (0,)


def test_encode_rejects_non_int16_audio() -> None:
    with pytest.raises(ValueError, match="int16"):
        encode_mulaw(np.zeros(160, dtype=np.float32))
