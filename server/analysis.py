"""Associations of vitals with weather and activity (pure statistics, no I/O).

The unit of analysis is the **hour**: weather is hourly, so vitals are hourly
means of usable summary windows (see :mod:`server.weather` for the linkage).
For every vital (heart rate, RMSSD, respiration) and factor (temperature,
pressure, humidity, activity intensity) two tests are run:

* **Spearman** rank correlation, and
* **partial Spearman**: the ranks of both variables are regressed on the
  covariates (activity intensity, unless activity is the factor, and time of
  day as a 24-h sine/cosine pair) and the residuals are correlated.

Hourly series are autocorrelated (weather over days, heart rate over hours),
which makes naive p-values far too small. The effective sample size of each
pair follows Bartlett's formula as used by Pyper & Peterman (1998, Can J Fish
Aquat Sci 55:2127): ``1/n_eff = 1/n + (2/n) sum_j (n-j)/n r_xx(j) r_yy(j)``
over lags ``j <= n/5``. Confidence intervals use Fisher's z with the
Fieller-Hartley-Pearson (1957) variance ``1.06 / (n_eff - 3 - k)`` for rank
correlations with ``k`` covariates; p-values use Student's t with
``n_eff - 2 - k`` degrees of freedom.

Multiple testing: **Holm** (1979) over all tests of one report. Holm controls
the family-wise error rate under any dependence between the tests (ours are
dependent: temperature and humidity move together, as do HR and RMSSD), and
the clinical question, "is there any association?", is a family-wise one: a
report saying "no significant association" must be wrong at most ``alpha`` of
the time when nothing is there. Benjamini-Hochberg would give more power for
screening but controls only the false discovery rate, and only under positive
dependence.

Cohorts combine the per-patient Fisher z values by a DerSimonian-Laird (1986)
random-effects meta-analysis (weights ``1/(se^2 + tau^2)``), so one patient
with many hours cannot speak for all.

Effect sizes are the correlations themselves, labelled after Cohen (1988):
``|r| < 0.1`` negligible, ``< 0.3`` small, ``< 0.5`` medium, else large.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

VITALS = ("hr", "rmssd", "resp")
FACTORS = ("temperature", "pressure", "humidity", "activity")
METHODS = ("spearman", "partial")
UNITS = {"hr": "bpm", "rmssd": "ms", "resp": "breaths/min", "temperature": "°C", "pressure": "hPa",
         "humidity": "%", "activity": "g"}  # fmt: skip
LABELS = {"hr": "heart rate", "rmssd": "HRV (RMSSD)", "resp": "respiration", "temperature": "temperature",
          "pressure": "pressure", "humidity": "humidity", "activity": "activity"}  # fmt: skip
ALPHA = 0.05
MIN_HOURS = 24  # fewer paired hours than this: the pair is not tested
NO_ASSOCIATION = "no significant association"


class AnalysisError(ValueError):
    """Input the analysis cannot use (mismatched lengths, unknown columns)."""


@dataclass(frozen=True)
class Association:
    """One test of one vital against one factor.

    Attributes:
        vital: ``hr``, ``rmssd`` or ``resp``.
        factor: ``temperature``, ``pressure``, ``humidity`` or ``activity``.
        method: ``spearman`` or ``partial`` (controlling activity and time of day).
        n: paired hours used.
        n_eff: effective sample size after autocorrelation, <= n.
        rho: correlation, -1..1 (``None`` if not testable).
        ci_low: lower bound of the 95 % confidence interval (with ``alpha`` 0.05).
        ci_high: upper bound.
        p: two-sided p-value, uncorrected.
        p_holm: Holm-adjusted p-value within the report.
        significant: ``p_holm < alpha``.
        effect: ``negligible``, ``small``, ``medium``, ``large`` (Cohen), or ``untested``.
    """

    vital: str
    factor: str
    method: str
    n: int
    n_eff: float
    rho: float | None
    ci_low: float | None
    ci_high: float | None
    p: float | None
    p_holm: float | None
    significant: bool
    effect: str


@dataclass(frozen=True)
class Report:
    """All associations of one patient or cohort and the verdict in words."""

    scope: str  # "patient" or "cohort"
    hours: int
    alpha: float
    correction: str
    associations: tuple[Association, ...]
    verdict: str


@dataclass(frozen=True)
class _Test:
    rho: float
    se_z: float
    p: float
    n: int
    n_eff: float


def effect_label(rho: float) -> str:
    """Cohen's label for ``|rho|``: negligible (< 0.1), small (< 0.3), medium (< 0.5), large."""
    r = abs(rho)
    return "negligible" if r < 0.1 else "small" if r < 0.3 else "medium" if r < 0.5 else "large"


def holm(p: Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values (monotone, capped at 1), in the input order."""
    pv = np.asarray(p, dtype=float)
    m = pv.size
    order = np.argsort(pv)
    adj = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * pv[order]))
    out = np.empty(m)
    out[order] = adj
    return out


def _acf(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Sample autocorrelation at lags 1..max_lag (biased estimator, by FFT with zero padding)."""
    x = x - x.mean()
    denom = float(x @ x)
    if denom == 0.0:
        return np.zeros(max_lag)
    spectrum = np.fft.rfft(x, 2 * x.size)
    return np.asarray(np.fft.irfft(spectrum * np.conj(spectrum))[1 : max_lag + 1] / denom)


def effective_n(x: np.ndarray, y: np.ndarray) -> float:
    """Bartlett/Pyper-Peterman effective sample size of a correlation of two series (3..n)."""
    n = x.size
    lags = max(1, n // 5)
    j = np.arange(1, lags + 1)
    s = float(np.sum((n - j) / n * _acf(x, lags) * _acf(y, lags)))
    inv = 1.0 / n + 2.0 / n * s
    return float(min(n, max(3.0, 1.0 / inv))) if inv > 0 else float(n)


def _residuals(y: np.ndarray, design: np.ndarray) -> np.ndarray:
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return np.asarray(y - design @ coef)


def _rank_test(x: np.ndarray, y: np.ndarray, covariates: np.ndarray | None, autocorr: bool) -> _Test | None:
    n = x.size
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    k = 0
    if covariates is not None and covariates.shape[1]:
        k = covariates.shape[1]
        design = np.column_stack([np.ones(n), covariates])
        rx, ry = _residuals(rx, design), _residuals(ry, design)
    if np.std(rx) == 0 or np.std(ry) == 0:
        return None
    rho = float(np.clip(np.corrcoef(rx, ry)[0, 1], -0.999999, 0.999999))
    n_eff = effective_n(rx, ry) if autocorr else float(n)
    df = max(1.0, n_eff - 2 - k)  # so few independent hours that the test is (rightly) very conservative
    t = rho * math.sqrt(df / (1 - rho * rho))
    p = float(2 * stats.t.sf(abs(t), df))
    se_z = math.sqrt(1.06 / max(df - 1, 1.0))
    return _Test(rho, se_z, p, n, n_eff)


def _time_of_day(hour_of_day: np.ndarray) -> np.ndarray:
    a = 2 * math.pi * hour_of_day / 24.0
    return np.column_stack([np.sin(a), np.cos(a)])


def _covariates(factor: str, activity: np.ndarray, hour_of_day: np.ndarray) -> np.ndarray:
    tod = _time_of_day(hour_of_day)
    if factor == "activity":
        return tod
    return np.column_stack([stats.rankdata(activity), tod])


def _pair_counts(columns: Mapping[str, np.ndarray]) -> dict[tuple[str, str, str], int]:
    """Hours with the vital, the factor, activity and time of day all present, per test."""
    base = np.isfinite(columns["activity"]) & np.isfinite(columns["hour_of_day"])
    return {(v, f, m): int(np.sum(base & np.isfinite(columns[v]) & np.isfinite(columns[f])))
            for v in VITALS for f in FACTORS for m in METHODS}


def _pair_tests(columns: Mapping[str, np.ndarray], autocorr: bool) -> dict[tuple[str, str, str], _Test | None]:
    out: dict[tuple[str, str, str], _Test | None] = {}
    for vital in VITALS:
        for factor in FACTORS:
            cols = [columns[vital], columns[factor], columns["activity"], columns["hour_of_day"]]
            ok = np.all([np.isfinite(c) for c in cols], axis=0)
            v, f, act, hod = (c[ok] for c in cols)
            for method in METHODS:
                if ok.sum() < MIN_HOURS:
                    out[(vital, factor, method)] = None
                    continue
                cov = _covariates(factor, act, hod) if method == "partial" else None
                out[(vital, factor, method)] = _rank_test(f, v, cov, autocorr)
    return out


def _columns(hours: Mapping[str, Sequence[float | None]]) -> dict[str, np.ndarray]:
    need = (*VITALS, *FACTORS, "hour_of_day")
    missing = [c for c in need if c not in hours]
    if missing:
        raise AnalysisError(f"missing columns: {', '.join(missing)}")
    cols = {c: np.array([np.nan if v is None else float(v) for v in hours[c]]) for c in need}
    lengths = {c.size for c in cols.values()}
    if len(lengths) > 1:
        raise AnalysisError(f"columns differ in length: {sorted(lengths)}")
    return cols


def _ci(rho: float, se_z: float, alpha: float) -> tuple[float, float]:
    z, q = math.atanh(rho), float(stats.norm.ppf(1 - alpha / 2))
    return math.tanh(z - q * se_z), math.tanh(z + q * se_z)


def _report(scope: str, hours: int, tests: Mapping[tuple[str, str, str], _Test | None], alpha: float,
            counts: Mapping[tuple[str, str, str], int]) -> Report:
    keys = list(tests)
    tested = [k for k in keys if tests[k] is not None]
    adjusted = dict(zip(tested, holm([tests[k].p for k in tested]))) if tested else {}  # type: ignore[union-attr]
    rows = []
    for key in keys:
        t = tests[key]
        if t is None:
            rows.append(Association(*key, counts.get(key, 0), 0.0, None, None, None, None, None, False, "untested"))
            continue
        lo, hi = _ci(t.rho, t.se_z, alpha)
        p_adj = float(adjusted[key])
        rows.append(Association(*key, t.n, round(t.n_eff, 1), t.rho, lo, hi, t.p, p_adj, p_adj < alpha,
                                effect_label(t.rho)))
    return Report(scope, hours, alpha, "holm", tuple(rows), verdict(rows, alpha))


def verdict(rows: Sequence[Association], alpha: float = ALPHA) -> str:
    """The report in one sentence: the significant associations, else "no significant association"."""
    if not any(r.rho is not None for r in rows):
        return f"not enough data: fewer than {MIN_HOURS} hours with both vitals and weather"
    found = [r for r in rows if r.significant]
    if not found:
        return f"{NO_ASSOCIATION} (Holm-corrected, alpha {alpha:g})"
    parts = [f"{LABELS[r.vital]} ~ {LABELS[r.factor]} ({r.method}, rho {r.rho:+.2f}, {r.effect})" for r in found]
    return "significant: " + "; ".join(parts)


def analyse_patient(hours: Mapping[str, Sequence[float | None]], alpha: float = ALPHA,
                    autocorr: bool = True) -> Report:
    """Associations of one patient's hourly vitals with weather and activity.

    Args:
        hours: equal-length columns, one entry per hour (``None``/NaN: missing):
            ``hr`` (bpm), ``rmssd`` (ms), ``resp`` (breaths/min), ``temperature``
            (°C), ``pressure`` (hPa), ``humidity`` (%), ``activity`` (mean
            intensity, g), ``hour_of_day`` (local solar time, 0..24). Hours in
            time order, so autocorrelation can be measured.
        alpha: family-wise error rate, 0..1.
        autocorr: correct for autocorrelation (turn off only to show why it is on).

    Returns:
        The report; untested pairs (fewer than :data:`MIN_HOURS` hours) are listed as such.

    Raises:
        AnalysisError: missing columns or columns of different lengths.
    """
    cols = _columns(hours)
    n = next(iter(cols.values())).size
    return _report("patient", n, _pair_tests(cols, autocorr), alpha, _pair_counts(cols))


def analyse_cohort(patients: Sequence[Mapping[str, Sequence[float | None]]], alpha: float = ALPHA) -> Report:
    """Associations across patients: per-patient Fisher z pooled by DerSimonian-Laird random effects.

    Args:
        patients: one ``hours`` mapping per patient, as for :func:`analyse_patient`.
        alpha: family-wise error rate, 0..1.
    """
    cols = [_columns(h) for h in patients]
    per = [_pair_tests(c, True) for c in cols]
    total = sum(next(iter(c.values())).size for c in cols)
    counts = {k: sum(_pair_counts(c)[k] for c in cols) for k in _pair_counts(cols[0])} if cols else {}
    pooled: dict[tuple[str, str, str], _Test | None] = {}
    for key in (k for v in VITALS for f in FACTORS for k in ((v, f, m) for m in METHODS)):
        tests = [t for p in per if (t := p.get(key)) is not None]
        pooled[key] = _random_effects(tests) if len(tests) >= 2 else (tests[0] if tests else None)
    return _report("cohort", total, pooled, alpha, counts)


def _random_effects(tests: Sequence[_Test]) -> _Test:
    z = np.array([math.atanh(t.rho) for t in tests])
    v = np.array([t.se_z**2 for t in tests])
    w = 1 / v
    fixed = float(np.sum(w * z) / np.sum(w))
    q = float(np.sum(w * (z - fixed) ** 2))
    c = float(np.sum(w) - np.sum(w * w) / np.sum(w))
    tau2 = max(0.0, (q - (len(tests) - 1)) / c) if c > 0 else 0.0
    w_re = 1 / (v + tau2)
    z_re = float(np.sum(w_re * z) / np.sum(w_re))
    se = math.sqrt(1 / float(np.sum(w_re)))
    p = float(2 * stats.norm.sf(abs(z_re) / se))
    return _Test(math.tanh(z_re), se, p, sum(t.n for t in tests), sum(t.n_eff for t in tests))


def report_rows(report: Report) -> list[dict[str, object]]:
    """The associations as flat dicts (the CSV's and the table's rows)."""
    return [
        {"vital": a.vital, "factor": a.factor, "method": a.method, "n_hours": a.n, "n_eff": a.n_eff,
         "rho": a.rho, "ci_low": a.ci_low, "ci_high": a.ci_high, "p": a.p, "p_holm": a.p_holm,
         "significant": a.significant, "effect": a.effect}
        for a in report.associations
    ]  # fmt: skip
