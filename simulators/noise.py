"""ECG noise models, streamed chunk by chunk with their filter states.

* **Baseline wander**: white noise low-passed below 0.5 Hz (2nd-order
  Butterworth), as from posture and skin impedance drift; fixed RMS in mV.
* **Muscle (EMG)**: white noise band-passed 20 Hz .. 0.45 fs; fixed RMS in mV.
* **Electrode motion**: white noise band-passed 0.5-10 Hz, the band of the
  MIT-BIH Noise Stress Test "em" record's energy (Moody, Muldrow, Mark,
  Computers in Cardiology 11:381, 1984), scaled to a requested SNR.
* **Lead-off**: handled by the caller (the strap outputs zeros).

SNR is in dB against a fixed reference power: that of the patient's clean ECG
in sinus rhythm at rest (see :func:`simulators.body.ecg_reference_power`), so
the noise level does not follow the heart rate of the moment.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy.signal import butter, sosfilt, sosfilt_zi

BASELINE_MV = 0.04
EMG_MV = 0.01


class _FilteredNoise:
    """White noise through a fixed filter, scaled to unit RMS, with state across chunks."""

    def __init__(self, sos: NDArray[np.float64], rng: np.random.Generator) -> None:
        self.sos, self.rng = sos, rng
        impulse = np.zeros(20_000)
        impulse[0] = 1.0
        self.gain = 1.0 / math.sqrt(float(np.sum(sosfilt(sos, impulse) ** 2)))
        self.zi = sosfilt_zi(sos) * 0.0

    def take(self, n: int) -> NDArray[np.float64]:
        y, self.zi = sosfilt(self.sos, self.rng.standard_normal(n), zi=self.zi)
        return np.asarray(y * self.gain, dtype=float)


class NoiseModel:
    """The noise of one strap lead.

    Args:
        fs: sampling rate, Hz (>= 50).
        rng: random generator (seeded by the caller).
        reference_power: mV^2, the clean ECG power SNRs refer to.
        baseline_mv, emg_mv: RMS of baseline wander and muscle noise, mV (0: off).
    """

    def __init__(
        self,
        fs: float,
        rng: np.random.Generator,
        reference_power: float,
        baseline_mv: float = BASELINE_MV,
        emg_mv: float = EMG_MV,
    ) -> None:
        self.fs, self.reference_power = fs, reference_power
        self.baseline_mv, self.emg_mv = baseline_mv, emg_mv
        nyq = fs / 2
        r1, r2, r3 = rng.spawn(3)  # one stream each, so chunk sizes do not change the noise
        self._baseline = _FilteredNoise(butter(2, 0.5, "lowpass", fs=fs, output="sos"), r1)
        self._emg = _FilteredNoise(butter(2, [20.0, min(0.9 * nyq, 150.0)], "bandpass", fs=fs, output="sos"), r2)
        self._em = _FilteredNoise(butter(2, [0.5, min(10.0, 0.9 * nyq)], "bandpass", fs=fs, output="sos"), r3)

    def noise_rms_for_snr(self, snr_db: float) -> float:
        """RMS (mV) of noise that sits ``snr_db`` below the reference power."""
        return math.sqrt(self.reference_power / 10 ** (snr_db / 10))

    def take(self, n: int, em_snr_db: float | None = None) -> NDArray[np.float64]:
        """The next ``n`` samples of noise, mV; electrode motion only when an SNR is given.

        All generators advance every call, so the noise does not depend on how
        the run is cut into chunks or on when electrode motion is switched on.
        """
        x = self.baseline_mv * self._baseline.take(n) + self.emg_mv * self._emg.take(n)
        em = self._em.take(n)
        if em_snr_db is not None:
            x = x + self.noise_rms_for_snr(em_snr_db) * em
        return x


def noise_snr_db(clean: NDArray[np.float64], noisy: NDArray[np.float64]) -> float:
    """Measured SNR (dB) of ``noisy`` against ``clean`` (same samples)."""
    clean, noisy = np.asarray(clean, dtype=float), np.asarray(noisy, dtype=float)
    return float(10 * np.log10(np.mean(clean**2) / np.mean((noisy - clean) ** 2)))
