"""Uplink bytes per patient-hour: summaries + strips (MQTT framing included) vs the raw ECG + accelerometer stream.

Ours: one hour of a patient's real ECG (MIT-BIH 101, the first 30 min twice,
resampled to the Polar H10's 130 Hz) and a 25 Hz accelerometer, through the
edge ``Summarizer`` (windows of ``--window`` s, batched ``--batch`` to a
``Summary`` message as the agent does), plus the rhythm strips it requests
(after the agent's de-duplication and rate limit, ``edge.strip_policy``)
and ``--strips`` symptom/panic strips of 30 s, all encoded with the wire
codec and framed as MQTT 5 PUBLISH packets (QoS 1). Strips are counted in
both wire encodings: ``i16`` (int16 base64, the original form) and ``dvz``
(the lossless delta/varint/DEFLATE form the agent sends, ``wire.dvz``).
Reference, same hour: the raw stream sent as it comes from the strap (PMD
frames of 73 ECG samples at 3 bytes and of 36 accelerometer samples at 3x2
bytes, each frame one MQTT PUBLISH). TCP/TLS overhead is left out of both.

    .venv/bin/python bench/bench_dsp_bandwidth.py [--window 60] [--batch 5] [--strips 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.strip_policy import RhythmStripPolicy  # noqa: E402
from edge.summary import Summarizer  # noqa: E402
from tests.edge.dsp.records import load_record, resampled  # noqa: E402
from wire import Kind, Strip, Summary, encode, encode_for_uplink  # noqa: E402
from wire.topics import topic_for  # noqa: E402

DEVICE = "patient-0001"
START = 1_763_900_010.0
ECG_FS, ACC_FS = 130.0, 25.0
STRIP_S = 30.0
ECG_FRAME, ACC_FRAME = 73, 36  # samples per PMD notification (Polar H10)


def mqtt_publish(topic: str, payload: int, qos: int = 1) -> int:
    """Bytes of an MQTT 5 PUBLISH: fixed header, topic, packet id (QoS > 0), empty properties, payload."""
    remaining = 2 + len(topic.encode()) + (2 if qos else 0) + 1 + payload
    return 1 + _varint_len(remaining) + remaining


def _varint_len(n: int) -> int:
    return 1 if n < 128 else 2 if n < 16_384 else 3 if n < 2_097_152 else 4


def hour_of_signals() -> tuple[np.ndarray, np.ndarray]:
    rec = resampled(load_record("101"), ECG_FS)
    half = rec.signal_mv[: int(1800 * ECG_FS)]
    ecg = np.concatenate([half, half])
    rng = np.random.default_rng(1)
    t = np.arange(0, 3600, 1 / ACC_FS)
    acc = np.tile([0.0, 1.0, 0.0], (t.size, 1)) + 0.01 * rng.standard_normal((t.size, 3))
    walking = (t % 900) < 300  # 5 min walking every quarter hour
    acc[walking, 1] += 0.25 * np.sin(2 * np.pi * 1.8 * t[walking])
    return ecg, acc


def ours(ecg: np.ndarray, acc: np.ndarray, window: float, batch: int, extra_strips: int) -> dict[str, float]:
    s = Summarizer(window, ecg_fs=ECG_FS, acc_fs=ACC_FS)
    windows = []
    for sec in range(3600):
        windows += s.feed_ecg(START + sec, ecg[int(sec * ECG_FS) : int((sec + 1) * ECG_FS)])
        windows += s.feed_acc(START + sec, acc[int(sec * ACC_FS) : int((sec + 1) * ACC_FS)])
    windows += s.finish()
    summary_bytes = 0
    for seq, i in enumerate(range(0, len(windows), batch)):
        payload = encode_for_uplink(Summary(DEVICE, seq, tuple(windows[i : i + batch])))
        summary_bytes += mqtt_publish(topic_for(DEVICE, Kind.SUMMARY), len(payload))
    policy = RhythmStripPolicy()
    requests = [(t, r) for t, r in s.take_strip_requests() if policy.admit(t, r) is None]
    patient = [(START + (k + 1) * 3600 / (extra_strips + 1), "symptom") for k in range(extra_strips)]
    sizes = {"i16": 0, "dvz": 0}
    for k, (t, reason) in enumerate(requests + patient):
        a = max(0, int((t - START - STRIP_S) * ECG_FS))
        uv = np.clip(np.round(ecg[a : a + int(STRIP_S * ECG_FS)] * 1000), -32768, 32767).astype(int)
        for encoding in sizes:
            message = Strip(DEVICE, 1000 + k, START + a / ECG_FS, ECG_FS, reason, tuple(uv.tolist()), encoding=encoding)
            sizes[encoding] += mqtt_publish(topic_for(DEVICE, Kind.STRIP), len(encode(message)))
    return {
        "windows": len(windows),
        "strips": len(requests) + len(patient),
        "rhythm strips": len(requests),
        "summaries": summary_bytes,
        "strips (wire int16)": sizes["i16"],
        "strips (compact)": sizes["dvz"],
    }


def raw_stream() -> int:
    topic = f"{topic_for(DEVICE, Kind.SUMMARY).rsplit('/', 1)[0]}/raw"
    ecg_frames = int(np.ceil(3600 * ECG_FS / ECG_FRAME))
    acc_frames = int(np.ceil(3600 * ACC_FS / ACC_FRAME))
    ecg = ecg_frames * mqtt_publish(topic, 10 + 3 * ECG_FRAME, qos=0)
    acc = acc_frames * mqtt_publish(topic, 10 + 6 * ACC_FRAME, qos=0)
    return ecg + acc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--window", type=float, default=60.0)
    ap.add_argument("--batch", type=int, default=5)
    ap.add_argument("--strips", type=int, default=2, help="symptom/panic strips per hour besides the rhythm ones")
    args = ap.parse_args()
    ecg, acc = hour_of_signals()
    got = ours(ecg, acc, args.window, args.batch, args.strips)
    raw = raw_stream()
    print(f"one patient-hour, windows of {args.window:g} s batched {args.batch}, {got['strips']:.0f} strips of {STRIP_S:g} s ({got['rhythm strips']:.0f} rhythm)")
    print(f"{'':34} {'bytes/h':>12} {'vs raw':>8}")
    print(f"{'raw ECG 130 Hz + acc 25 Hz (ref)':34} {raw:12,.0f} {1.0:8.1f}x")
    for label, strips in (("i16 strips", got["strips (wire int16)"]), ("dvz strips", got["strips (compact)"])):
        total = got["summaries"] + strips
        print(f"{'summaries + ' + label:34} {total:12,.0f} {raw / total:8.1f}x less")
    only = got["summaries"]
    print(f"{'summaries only':34} {only:12,.0f} {raw / only:8.1f}x less")


if __name__ == "__main__":
    main()
