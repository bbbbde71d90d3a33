"""The one audio type every layer shares: mono PCM16 samples as a numpy int16 array."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Pcm16 = npt.NDArray[np.int16]
