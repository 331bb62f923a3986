"""Hourly weather per location: temperature, pressure and relative humidity.

A climatological model, deterministic for (seed, location): a seasonal mean
temperature from latitude (~28 C at the equator, cooler by 0.45 C per degree,
with a seasonal swing of 0.2 C per degree, coldest in mid-January in the north
and mid-July in the south), a diurnal cycle of +-4 C peaking at 15:00 local
solar time, and synoptic weather as AR(1) anomalies (temperature: SD 3 C,
~2-day memory; pressure: SD 8 hPa around 1013 hPa, ~1.5-day memory; low
pressure brings milder, wetter air). Humidity follows from a dew point a few
degrees below the daily mean through the Magnus formula (Alduchov & Eskridge,
J. Appl. Meteor. 35:601, 1996), so it peaks at dawn as real humidity does.
Patients at the same place (to 0.01 degree) see the same weather.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

TEMP_SD_C, TEMP_TAU_H = 3.0, 48.0
PRESSURE_SD_HPA, PRESSURE_TAU_H = 8.0, 36.0
DIURNAL_C = 4.0
MAGNUS_B, MAGNUS_C = 17.62, 243.12


@dataclass(frozen=True)
class WeatherHour:
    """One hour's weather at a place.

    Attributes:
        time: start of the hour, s since epoch.
        temperature_c: air temperature, degrees Celsius.
        pressure_hpa: sea-level pressure, hPa.
        humidity_pct: relative humidity, %, 5..100.
    """

    time: float
    temperature_c: float
    pressure_hpa: float
    humidity_pct: float


def _ar1(rng: np.random.Generator, n: int, sd: float, tau_h: float) -> np.ndarray:
    a = math.exp(-1.0 / tau_h)
    e = rng.standard_normal(n) * sd * math.sqrt(1 - a * a)
    x = np.empty(n)
    prev = float(rng.standard_normal()) * sd
    for i in range(n):
        prev = a * prev + e[i]
        x[i] = prev
    return x


def _magnus(t_c: np.ndarray) -> np.ndarray:
    return np.asarray(np.exp(MAGNUS_B * t_c / (MAGNUS_C + t_c)))


def weather_hourly(lat: float, lon: float, start_time: float, hours: int, seed: int = 0) -> tuple[WeatherHour, ...]:
    """``hours`` hourly records at (``lat``, ``lon``) degrees from the hour containing ``start_time``.

    Raises:
        ValueError: latitude/longitude out of range or a negative count.
    """
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or hours < 0:
        raise ValueError("lat must be within -90..90, lon within -180..180, hours >= 0")
    rng = np.random.default_rng([seed, round(lat * 100) + 9_000, round(lon * 100) + 18_000])
    t = (math.floor(start_time / 3600) + np.arange(hours)) * 3600.0
    day = (t / 86400.0) % 365.25
    swing = 0.2 * abs(lat) * (1 if lat >= 0 else -1)
    seasonal = 28 - 0.45 * abs(lat) + swing * np.cos(2 * math.pi * (day - 196) / 365.25)
    solar_hour = (t / 3600.0 + lon / 15.0) % 24
    pressure_anom = _ar1(rng, hours, PRESSURE_SD_HPA, PRESSURE_TAU_H)
    temp_anom = _ar1(rng, hours, TEMP_SD_C, TEMP_TAU_H) - 0.1 * pressure_anom
    daily_mean = seasonal + temp_anom
    temp = daily_mean + DIURNAL_C * np.cos(2 * math.pi * (solar_hour - 15) / 24)
    dew = daily_mean - 4.0 - 0.15 * pressure_anom
    humidity = np.clip(100 * _magnus(dew) / _magnus(temp), 5, 100)
    pressure = 1013.0 + pressure_anom
    return tuple(
        WeatherHour(float(t[i]), round(float(temp[i]), 1), round(float(pressure[i]), 1), round(float(humidity[i]), 1))
        for i in range(hours)
    )
