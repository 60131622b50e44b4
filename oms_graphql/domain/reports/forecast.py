"""Daily demand forecasts per SKU, their backtest accuracy, and reorder suggestions.

- Holt-Winters (statsmodels' ExponentialSmoothing, additive weekly seasonality) for a
  series long and regular enough; Croston's method with the Syntetos-Boylan correction
  (SBA) for a short, sparse or intermittent one (most days without a sale), where
  smoothing the zeros would forecast a fraction every day and seasonality is noise.
- ``mase``: on the last ``HOLDOUT_WEEKS`` held-out weeks, the forecast's mean absolute
  error ÷ that of the 7-day seasonal-naive forecast (the last training week repeated);
  under 1 beats seasonal-naive. None when the series is too short to hold weeks out, or
  when seasonal-naive is exact (nothing to scale by).
- Intervals: quantity ± z × σ of the one-step in-sample residuals, z for the level asked
  (95% by default), floored at 0 (demand is never negative).
- Reorder: demand over the lead time + safety stock (z × σ × √lead time) − (on hand −
  reserved + in transit), never below 0.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from statistics import NormalDist

HOLDOUT_WEEKS = 2
SEASON = 7
# Croston/SBA below this many days of history, or when most days sold nothing
# (average demand interval over 1.32, Syntetos & Boylan's cut-off).
MIN_SEASONAL_DAYS = 5 * SEASON
INTERMITTENT_ADI = 1.32
CROSTON_ALPHA = 0.1


class Method:
    HOLT_WINTERS = "HOLT_WINTERS"
    CROSTON_SBA = "CROSTON_SBA"


@dataclass
class ForecastPoint:
    quantity: float
    lower: float
    upper: float


@dataclass
class Forecast:
    method: str
    mase: float | None
    sigma: float  # σ of the one-step residuals (units a day)
    points: list[ForecastPoint]

    def share(self, fraction: float) -> Forecast:
        """The part of this demand one location serves (its points and σ scaled)."""
        points = [ForecastPoint(p.quantity * fraction, p.lower * fraction, p.upper * fraction) for p in self.points]
        return Forecast(self.method, self.mase, self.sigma * fraction, points)

    def daily_mean(self) -> float:
        return sum(p.quantity for p in self.points) / len(self.points) if self.points else 0.0

    def demand_over(self, days: int) -> float:
        return sum(point.quantity for point in self.points[:days]) + (
            self.points[-1].quantity * max(0, days - len(self.points)) if self.points else 0.0
        )


def z_for(service_level: float) -> float:
    return NormalDist().inv_cdf(0.5 + service_level / 2) if 0 < service_level < 1 else 1.96


def is_intermittent(history: list[float]) -> bool:
    selling_days = sum(1 for value in history if value > 0)
    if len(history) < MIN_SEASONAL_DAYS or selling_days == 0:
        return True
    return len(history) / selling_days > INTERMITTENT_ADI


def croston_sba(history: list[float], horizon: int) -> tuple[list[float], list[float]]:
    """(flat forecast for ``horizon`` days, one-step in-sample forecasts)."""
    size = interval = None
    periods_since = 1
    fitted: list[float] = []
    for value in history:
        fitted.append((1 - CROSTON_ALPHA / 2) * size / interval if size is not None and interval else 0.0)
        if value > 0:
            if size is None or interval is None:
                size, interval = value, float(periods_since)
            else:
                size += CROSTON_ALPHA * (value - size)
                interval += CROSTON_ALPHA * (periods_since - interval)
            periods_since = 1
        else:
            periods_since += 1
    level = (1 - CROSTON_ALPHA / 2) * size / interval if size is not None and interval else 0.0
    return [level] * horizon, fitted


def holt_winters(history: list[float], horizon: int) -> tuple[list[float], list[float]]:
    import numpy as np
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on short or flat series
        fit = ExponentialSmoothing(
            np.asarray(history, dtype=float), trend=None, seasonal="add", seasonal_periods=SEASON
        ).fit()
    return [max(0.0, float(v)) for v in fit.forecast(horizon)], [float(v) for v in fit.fittedvalues]


def _predict(history: list[float], horizon: int, method: str) -> tuple[list[float], list[float]]:
    return holt_winters(history, horizon) if method == Method.HOLT_WINTERS else croston_sba(history, horizon)


def backtest_mase(history: list[float], method: str) -> float | None:
    held = HOLDOUT_WEEKS * SEASON
    if len(history) < held + 2 * SEASON:
        return None
    train, test = history[:-held], history[-held:]
    predicted, _ = _predict(train, held, method)
    naive = [train[-SEASON + (day % SEASON)] for day in range(held)]
    model_error = sum(abs(p - a) for p, a in zip(predicted, test, strict=True)) / held
    naive_error = sum(abs(n - a) for n, a in zip(naive, test, strict=True)) / held
    return None if naive_error == 0 else model_error / naive_error


def forecast_demand(history: list[float], horizon: int = 28, service_level: float = 0.95) -> Forecast:
    """Forecast ``horizon`` days after ``history`` (units a day, oldest first)."""
    method = Method.CROSTON_SBA if is_intermittent(history) else Method.HOLT_WINTERS
    predicted, fitted = _predict(history, horizon, method)
    residuals = [actual - guess for actual, guess in zip(history, fitted, strict=False)]
    sigma = math.sqrt(sum(r * r for r in residuals) / len(residuals)) if residuals else 0.0
    z = z_for(service_level)
    points = [ForecastPoint(q, max(0.0, q - z * sigma), q + z * sigma) for q in predicted]
    return Forecast(method=method, mase=backtest_mase(history, method), sigma=sigma, points=points)


@dataclass
class ReorderSuggestion:
    demand: float  # over the lead time
    safety_stock: float
    position: int  # on hand − reserved + in transit
    quantity: int  # to order now


def reorder_suggestion(
    forecast: Forecast, *, lead_time_days: int, on_hand: int, reserved: int, in_transit: int, service_level: float
) -> ReorderSuggestion:
    days = max(1, lead_time_days)
    demand = forecast.demand_over(days)
    safety = z_for(service_level) * forecast.sigma * math.sqrt(days)
    position = on_hand - reserved + in_transit
    return ReorderSuggestion(demand, safety, position, max(0, math.ceil(demand + safety - position)))
