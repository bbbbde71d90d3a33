"""The audio hot path of every call: mu-law codec, resampling, framing and voice activity.

Modules: `mulaw` (G.711), `resample` (soxr), `frames` (PCM16 helpers, `FrameBuffer`),
`vad` (`open_vad` over `silero_vad` and `energy_vad`). All audio is mono numpy int16.
"""
