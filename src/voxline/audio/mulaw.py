"""G.711 mu-law codec (the audio of Twilio media streams) with lookup tables built once.

Bit-exact with the ITU G.711 reference as implemented by CPython's `audioop.lin2ulaw` /
`audioop.ulaw2lin`: 14-bit magnitude, bias 0x84, clip at 32635, all bits inverted.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from voxline.audio.pcm import Pcm16

_BIAS = 0x84
_CLIP = 8159  # 32635 >> 2: the reference works on the top 14 bits of the sample
_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)


def _build_decode_table() -> Pcm16:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    magnitude = (((code & 0x0F) << 3) + _BIAS) << ((code & 0x70) >> 4)
    linear = np.where(code & 0x80, _BIAS - magnitude, magnitude - _BIAS)
    return linear.astype(np.int16)


def _build_encode_table() -> npt.NDArray[np.uint8]:
    # Index i is the uint16 bit pattern of an int16 sample, so pcm.view(np.uint16) indexes it.
    sample = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32) >> 2
    negative = sample < 0
    mask = np.where(negative, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(sample), _CLIP) + (_BIAS >> 2)
    segment = np.searchsorted(_SEGMENT_ENDS, magnitude, side="left")
    mantissa = (magnitude >> (np.minimum(segment, 7) + 1)) & 0x0F
    code = np.where(segment >= 8, 0x7F, (segment << 4) | mantissa)
    return (code ^ mask).astype(np.uint8)


_DECODE = _build_decode_table()
_ENCODE = _build_encode_table()
_DECODE.flags.writeable = False
_ENCODE.flags.writeable = False


def decode_mulaw(payload: bytes) -> Pcm16:
    """Decode mu-law bytes (one byte per sample) into a new PCM16 array."""
    return _DECODE[np.frombuffer(payload, dtype=np.uint8)]


def encode_mulaw(pcm: Pcm16) -> bytes:
    """Encode 1-D PCM16 samples as mu-law bytes (one byte per sample)."""
    if pcm.dtype != np.int16 or pcm.ndim != 1:
        raise ValueError(f"expected 1-D int16 PCM, got {pcm.ndim}-D {pcm.dtype}")
    return _ENCODE[pcm.view(np.uint16)].tobytes()
