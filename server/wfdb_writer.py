"""ECG strips as PhysioNet WFDB records (pure): a header (``.hea``) and a format-16 signal file (``.dat``).

A strip is stored as int16 little-endian µV, which is exactly WFDB's format 16
(16-bit two's complement, little-endian), so the signal file is the stored
bytes as they are and the header says ``1000(0)/mV`` (1000 ADC units per mV,
baseline 0). The header carries the strip's start as WFDB base time and date
(UTC) and the checksum readers verify. A small writer of our own instead of the
``wfdb`` package at run time: that package pulls in pandas, matplotlib and
more for two short text lines; the tests read the records back with it.

Reference: PhysioNet, "WFDB header format" (header(5)) and "signal(5)".
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from datetime import datetime, timezone

RECORD_NAME = re.compile(r"[-\w]+")
GAIN_PER_MV = 1000  # ADC units (µV) per mV
ADC_RESOLUTION = 16  # bits


def record_name(device_id: str, seq: int) -> str:
    """A WFDB record name for a strip: ``<device>_<seq>`` (letters, digits, ``_`` and ``-`` only)."""
    name = f"{device_id}_{seq}"
    if not RECORD_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a WFDB record name")
    return name


def checksum(samples: Sequence[int]) -> int:
    """WFDB's checksum: the 16-bit signed sum of all samples."""
    return (sum(samples) + 32768) % 65536 - 32768


def signal_file(samples: Sequence[int]) -> bytes:
    """The format-16 signal file: each sample (µV, int16) little-endian; ValueError outside int16."""
    try:
        return struct.pack(f"<{len(samples)}h", *samples)
    except struct.error as exc:
        raise ValueError(f"a sample is outside int16: {exc}") from exc


def header(name: str, fs: float, samples: Sequence[int], start: datetime, description: str = "ECG") -> str:
    """The header of a one-signal record of ``samples`` (µV) at ``fs`` Hz starting at ``start``."""
    if not RECORD_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a WFDB record name")
    if fs <= 0:
        raise ValueError(f"fs must be positive, got {fs}")
    t = start.astimezone(timezone.utc)
    base = f"{t:%H:%M:%S}.{t.microsecond // 1000:03d} {t:%d/%m/%Y}"
    first = samples[0] if samples else 0
    signal = (f"{name}.dat 16 {GAIN_PER_MV}(0)/mV {ADC_RESOLUTION} 0 {first} {checksum(samples)} 0 "
              f"{description}")  # fmt: skip
    return f"{name} 1 {fs:g} {len(samples)} {base}\n{signal}\n"


def strip_record(name: str, fs: float, samples: Sequence[int], start: datetime,
                 description: str = "ECG") -> dict[str, bytes]:  # fmt: skip
    """``{file name: bytes}`` of the record: ``<name>.hea`` and ``<name>.dat``."""
    return {f"{name}.hea": header(name, fs, samples, start, description).encode(),
            f"{name}.dat": signal_file(samples)}  # fmt: skip
