"""Statistics of server.analysis on simulated hours: error rates under the null, power with an effect."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from server import analysis

HOURS = 240  # ten days
REPLICATES = 300


def ar1(rng: np.random.Generator, n: int, tau_h: float) -> np.ndarray:
    """A unit-variance AR(1) series with time constant ``tau_h`` hours."""
    a = math.exp(-1 / tau_h)
    x = np.empty(n)
    x[0] = rng.standard_normal()
    e = rng.standard_normal(n) * math.sqrt(1 - a * a)
    for i in range(1, n):
        x[i] = a * x[i - 1] + e[i]
    return x


def simulated_hours(seed: int, effect: float = 0.0, n: int = HOURS, diurnal: float = 1.0) -> dict[str, list[float]]:
    """Autocorrelated weather and vitals with a diurnal cycle; ``effect`` couples HR to temperature.

    With ``diurnal`` > 0 the vitals share the day's rhythm (through activity and the time of day) with
    temperature and humidity: their plain Spearman correlation is then truly non-zero (confounded), and
    only the partial correlation's null hypothesis holds.
    """
    rng = np.random.default_rng(seed)
    hod = np.arange(n) % 24.0
    day = np.sin(2 * np.pi * (hod - 9) / 24)
    temperature = 10 + 4 * day + 3 * ar1(rng, n, 48)
    pressure = 1013 + 8 * ar1(rng, n, 72)
    humidity = np.clip(70 - 10 * day + 8 * ar1(rng, n, 24), 5, 100)
    activity = np.clip(0.05 + diurnal * 0.04 * (day > 0) + 0.02 * ar1(rng, n, 3), 0, None)
    # Vitals follow activity and the time of day (both are what partial correlation removes).
    hr = 70 + 150 * activity + diurnal * 5 * day + 4 * ar1(rng, n, 6) + effect * 4 * (temperature - 10) / 3
    rmssd = 35 - 80 * activity + 8 * ar1(rng, n, 6)
    resp = 15 + 30 * activity + 1.5 * ar1(rng, n, 6)
    return {"hr": list(hr), "rmssd": list(rmssd), "resp": list(resp), "temperature": list(temperature),
            "pressure": list(pressure), "humidity": list(humidity), "activity": list(activity),
            "hour_of_day": list(hod)}


def binomial_upper(rate: float, n: int) -> float:
    """Upper end of a one-sided 99.9 % binomial tolerance around ``rate`` for ``n`` replicates."""
    return float(stats.binom.ppf(0.999, n, rate)) / n


def weather_findings(report: analysis.Report, methods: tuple[str, ...] = ("partial",)) -> list[analysis.Association]:
    return [a for a in report.associations if a.significant and a.factor != "activity" and a.method in methods]


def test_family_wise_error_under_the_null_is_at_most_alpha() -> None:
    """Weather has no effect; vitals follow activity and the day: no partial test may fire beyond alpha."""
    false = sum(bool(weather_findings(analysis.analyse_patient(simulated_hours(s)))) for s in range(REPLICATES))
    assert false / REPLICATES <= binomial_upper(analysis.ALPHA, REPLICATES)


def test_without_a_shared_day_rhythm_no_weather_test_of_either_method_fires_beyond_alpha() -> None:
    both = ("spearman", "partial")
    false = sum(bool(weather_findings(analysis.analyse_patient(simulated_hours(s, diurnal=0.0)), both))
                for s in range(REPLICATES))
    assert false / REPLICATES <= binomial_upper(analysis.ALPHA, REPLICATES)


def test_plain_spearman_sees_the_day_rhythm_that_partial_correlation_removes() -> None:
    spearman = sum(bool(weather_findings(analysis.analyse_patient(simulated_hours(s)), ("spearman",)))
                   for s in range(100))
    assert spearman / 100 > binomial_upper(analysis.ALPHA, 100)


def test_null_reports_say_no_significant_association_for_weather() -> None:
    report = analysis.analyse_patient(simulated_hours(7))
    assert not weather_findings(report)
    partial = [a for a in report.associations if a.method == "partial" and a.factor != "activity"]
    # The interval and the uncorrected p-value agree: 0 is inside exactly when p >= alpha.
    for a in partial:
        assert a.p is not None and a.ci_low is not None and a.ci_high is not None
        assert (a.ci_low <= 0 <= a.ci_high) == (a.p >= analysis.ALPHA)


def test_ignoring_autocorrelation_inflates_false_positives() -> None:
    """Why the effective sample size is there: naive p-values on hourly series find weather effects that are not."""
    naive = sum(bool(weather_findings(analysis.analyse_patient(simulated_hours(s, diurnal=0.0), autocorr=False)))
                for s in range(100))
    assert naive / 100 > binomial_upper(analysis.ALPHA, 100)


def test_injected_temperature_effect_is_found_with_high_power() -> None:
    """A month of hours: weather changes over days, so ten days hold only a handful of independent spells."""
    hits = 0
    for s in range(50):
        report = analysis.analyse_patient(simulated_hours(1000 + s, effect=1.0, n=720))
        hits += any(a.vital == "hr" and a.factor == "temperature" and a.method == "partial" and a.significant
                    and a.rho is not None and a.rho > 0 for a in report.associations)
    assert hits / 50 >= 0.9


def test_found_effect_is_labelled_and_has_an_interval_around_it() -> None:
    report = analysis.analyse_patient(simulated_hours(5, effect=0.8, n=720))
    hit = next(a for a in report.associations if (a.vital, a.factor, a.method) == ("hr", "temperature", "partial"))
    assert hit.significant and hit.ci_low is not None and hit.ci_high is not None and hit.rho is not None
    assert 0 < hit.ci_low < hit.rho < hit.ci_high < 1
    assert hit.effect in {"medium", "large"}
    assert report.verdict.startswith("significant: ") and "heart rate ~ temperature" in report.verdict


def test_cohort_null_and_effect() -> None:
    false = 0
    for r in range(60):
        cohort = [simulated_hours(10_000 + 10 * r + i, diurnal=0.0) for i in range(5)]
        false += bool(weather_findings(analysis.analyse_cohort(cohort), ("spearman", "partial")))
    assert false / 60 <= binomial_upper(analysis.ALPHA, 60)
    cohort = [simulated_hours(50 + i, effect=0.4, n=240) for i in range(8)]
    report = analysis.analyse_cohort(cohort)
    hit = next(a for a in report.associations if (a.vital, a.factor, a.method) == ("hr", "temperature", "partial"))
    assert report.scope == "cohort" and hit.significant and hit.n == 8 * 240


def test_holm_matches_the_textbook_example() -> None:
    # Holm (1979) step-down by hand: sorted p 0.01, 0.02, 0.03, 0.04 times 4, 3, 2, 1, then running max.
    adjusted = analysis.holm([0.03, 0.01, 0.04, 0.02])
    assert np.allclose(adjusted, [0.06, 0.04, 0.06, 0.06])


def test_spearman_without_covariates_agrees_with_scipy_on_independent_data() -> None:
    hours = simulated_hours(3)
    report = analysis.analyse_patient(hours, autocorr=False)
    a = next(a for a in report.associations if (a.vital, a.factor, a.method) == ("hr", "pressure", "spearman"))
    ref = stats.spearmanr(hours["pressure"], hours["hr"])
    assert a.rho == pytest.approx(ref.statistic, abs=1e-9)
    assert a.p == pytest.approx(ref.pvalue, rel=1e-6)


def test_effective_n_shrinks_for_autocorrelated_series_only() -> None:
    rng = np.random.default_rng(1)
    white = analysis.effective_n(rng.standard_normal(500), rng.standard_normal(500))
    slow = analysis.effective_n(ar1(rng, 500, 24), ar1(rng, 500, 24))
    assert white > 400 and slow < 100


def test_too_few_hours_are_untested_and_said_so() -> None:
    report = analysis.analyse_patient(simulated_hours(1, n=10))
    assert all(a.effect == "untested" and a.rho is None and a.n == 10 for a in report.associations)
    assert report.verdict.startswith("not enough data")


def test_missing_values_are_skipped_pairwise() -> None:
    hours = simulated_hours(2)
    hours["resp"] = [None] * HOURS  # type: ignore[list-item]
    report = analysis.analyse_patient(hours)
    assert all(a.rho is None and a.n == 0 for a in report.associations if a.vital == "resp")
    assert all(a.n == HOURS for a in report.associations if a.vital == "hr")


def test_bad_input_is_refused_clearly() -> None:
    hours = simulated_hours(2)
    del hours["humidity"]
    with pytest.raises(analysis.AnalysisError, match="humidity"):
        analysis.analyse_patient(hours)
    hours = simulated_hours(2)
    hours["hr"] = hours["hr"][:-1]
    with pytest.raises(analysis.AnalysisError, match="length"):
        analysis.analyse_patient(hours)


def test_autocorrelation_by_fft_equals_the_direct_sum() -> None:
    x = np.random.default_rng(4).standard_normal(300)
    c = x - x.mean()
    direct = np.array([c[:-j] @ c[j:] for j in range(1, 61)]) / (c @ c)
    assert np.allclose(analysis._acf(x, 60), direct, atol=1e-12)
    assert np.all(analysis._acf(np.ones(50), 5) == 0)
