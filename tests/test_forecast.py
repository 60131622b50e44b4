"""The forecast on synthetic series: weekly seasonality is learnt and beats seasonal-naive,
an intermittent series falls back to Croston/SBA, and the reorder arithmetic."""

from __future__ import annotations

import random

import pytest

from oms_graphql.domain.reports.forecast import (
    Forecast,
    ForecastPoint,
    Method,
    croston_sba,
    forecast_demand,
    reorder_suggestion,
)

WEEK = [20, 22, 25, 24, 30, 60, 55]  # Monday … Sunday: weekends sell most


def seasonal_series(weeks: int, noise: float, seed: int = 7) -> list[float]:
    rng = random.Random(seed)
    return [max(0.0, WEEK[day % 7] + rng.gauss(0, noise)) for day in range(weeks * 7)]


def test_weekly_seasonality_is_learnt_and_beats_seasonal_naive():
    history = seasonal_series(weeks=16, noise=4)
    forecast = forecast_demand(history, horizon=14)
    assert forecast.method == Method.HOLT_WINTERS
    # Seasonal-naive repeats one noisy week; the smoothed season averages the noise out.
    assert forecast.mase is not None and forecast.mase < 1
    saturday, tuesday = forecast.points[5], forecast.points[1]  # the history ends on a Sunday
    assert saturday.quantity == pytest.approx(60, abs=6) and tuesday.quantity == pytest.approx(22, abs=6)
    assert all(p.lower <= p.quantity <= p.upper for p in forecast.points)
    assert all(p.lower >= 0 for p in forecast.points) and len(forecast.points) == 14


def test_an_intermittent_series_falls_back_to_croston_sba():
    # A sale of 4 every 5th day (the first on day 5): four days in five are zero.
    history = [4.0 if day % 5 == 4 else 0.0 for day in range(84)]
    forecast = forecast_demand(history, horizon=7)
    assert forecast.method == Method.CROSTON_SBA
    # Size 4, interval 5: Croston 4/5 = 0.8 a day, SBA × (1 − 0.1/2) = 0.76.
    assert [p.quantity for p in forecast.points] == pytest.approx([0.76] * 7)
    assert forecast.points[0].lower == 0.0


def test_short_and_empty_histories_fall_back_too():
    assert forecast_demand([3.0] * 10, horizon=3).method == Method.CROSTON_SBA
    empty = forecast_demand([], horizon=3)
    assert [p.quantity for p in empty.points] == [0.0, 0.0, 0.0] and empty.mase is None
    # Sizes 2, 2 and intervals 3 then 2: interval 3 + 0.1 × (2 − 3) = 2.9 → 0.95 × 2 / 2.9.
    assert croston_sba([0, 0, 2, 0, 2], 1)[0] == pytest.approx([0.95 * 2 / 2.9])


def test_the_reorder_suggestion_covers_lead_time_demand_and_safety_stock():
    flat = Forecast(method=Method.CROSTON_SBA, mase=None, sigma=2.0, points=[ForecastPoint(5.0, 1.0, 9.0)] * 28)
    # Lead time 4 days: demand 4 × 5 = 20; safety 1.6449 × 2 × √4 = 6.58 (90% service);
    # position 10 on hand − 3 reserved + 2 in transit = 9 → order ceil(20 + 6.58 − 9) = 18.
    got = reorder_suggestion(flat, lead_time_days=4, on_hand=10, reserved=3, in_transit=2, service_level=0.90)
    assert got.demand == 20 and got.safety_stock == pytest.approx(6.579, abs=1e-3)
    assert (got.position, got.quantity) == (9, 18)
    plenty = reorder_suggestion(flat, lead_time_days=4, on_hand=100, reserved=0, in_transit=0, service_level=0.9)
    assert plenty.quantity == 0
