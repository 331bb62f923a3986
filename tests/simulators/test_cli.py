"""``pisces simulate``: record, weather and fleet subcommands."""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
import pytest

from simulators.cli import configure


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    configure(parser)
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_record_writes_ecg_and_truth(tmp_path: Path) -> None:
    assert _run("record", "--scenario", "arrhythmia_tour", "--duration", "30", "--fs", "200", "--out", str(tmp_path)) == 0
    with (tmp_path / "ecg.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6000 and set(rows[0]) == {"time_s", "ecg_mv", "resp_band"}
    ecg = np.array([float(r["ecg_mv"]) for r in rows])
    truth = json.loads((tmp_path / "truth.json").read_text())
    for beat in truth["beat_times"][1:-1]:
        i = int(round(beat * 200))
        assert ecg[i - 1 : i + 2].max() == ecg[max(i - 5, 0) : i + 6].max()
    assert _run("record", "--scenario", "nope", "--out", str(tmp_path)) == 2


def test_weather_prints_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("weather", "--lat", "48.1", "--lon", "11.6", "--hours", "5", "--start", "1700000000") == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 5 and {"time", "temperature_c", "pressure_hpa", "humidity_pct"} == set(lines[0])
    assert _run("weather", "--lat", "99", "--lon", "0") == 2


@pytest.mark.mqtt
def test_fleet_command_reports_sent_and_acked(mqtt_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prefix = f"tcli{int(time.time() * 1000) % 10**8}"
    code = _run("fleet", "--patients", "3", "--duration", "60", "--window-seconds", "10", "--past",
                "--mqtt-url", mqtt_url, "--device-prefix", prefix, "--outbox-dir", str(tmp_path))
    out = capsys.readouterr().out
    assert code == 0 and "patients 3  windows 18" in out and "pending 0" in out
    sent = int(out.split("published ")[1].split()[0])
    acked = int(out.split("acked ")[1].split()[0])
    assert sent == acked > 0
    assert _run("fleet", "--patients", "0") == 2


def test_list_names_scenarios_and_profiles(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("list") == 0
    out = capsys.readouterr().out
    assert "day_routine" in out and "arrhythmia_tour" in out and "hf_elderly" in out and "heart_failure" in out
