"""Forecast accuracy on synthetic series whose truth is known (issue 12): the figures behind
`reports.demandForecast`'s method choice, its backtest MASE and its prediction intervals.

    .venv/bin/python bench/bench_forecast.py            # 50 series per kind
    .venv/bin/python bench/bench_forecast.py --series 200

For each kind of series (a weekly season with weekends selling most, at several noise levels;
the same with a trend; intermittent demand) it draws ``--series`` histories of 16 weeks plus the
2 weeks that follow, forecasts the 2 weeks from the history with `forecast_demand` (the code the
report runs), and prints: the method chosen; the backtest MASE the report shows (on the
history's last two weeks, against a 7-day seasonal-naive forecast); the MASE on the two weeks
that really followed; and how often the following days fell inside the 95% interval.
No database: the fits are the report's whole cost beside its one aggregate read.
"""

from __future__ import annotations

import argparse
import random
import statistics
from collections import Counter
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from oms_graphql.domain.reports.forecast import forecast_demand

WEEK = [20, 22, 25, 24, 30, 60, 55]  # Monday … Sunday
HISTORY_DAYS, HORIZON = 16 * 7, 14


def seasonal(noise: float, trend: float = 0.0) -> Callable[[random.Random], list[float]]:
    def draw(rng: random.Random) -> list[float]:
        return [
            max(0.0, WEEK[day % 7] * (1 + trend * day) + rng.gauss(0, noise)) for day in range(HISTORY_DAYS + HORIZON)
        ]

    return draw


def intermittent(rng: random.Random) -> list[float]:
    return [float(rng.randint(1, 6)) if rng.random() < 0.15 else 0.0 for _ in range(HISTORY_DAYS + HORIZON)]


KINDS: dict[str, Callable[[random.Random], list[float]]] = {
    "weekly season, noise σ 2": seasonal(2),
    "weekly season, noise σ 5": seasonal(5),
    "weekly season, noise σ 10": seasonal(10),
    "weekly season, noise σ 20": seasonal(20),
    "weekly season + 0.5%/day trend, σ 5": seasonal(5, 0.005),
    "intermittent (15% of days, 1–6 units)": intermittent,
}


def mase(predicted: list[float], actual: list[float], naive: list[float]) -> float | None:
    naive_error = sum(abs(n - a) for n, a in zip(naive, actual, strict=True))
    if naive_error == 0:
        return None
    return sum(abs(p - a) for p, a in zip(predicted, actual, strict=True)) / naive_error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=50, help="series drawn per kind")
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()
    table = Table(title=f"demandForecast on synthetic series ({args.series} per kind, 16 weeks → 2 weeks)")
    for column in (
        "series",
        "method chosen",
        "backtest MASE p50",
        "MASE on the 2 weeks after, p50 (p90)",
        "beats seasonal-naive",
        "inside 95% interval",
    ):
        table.add_column(column, justify="left" if column in ("series", "method chosen") else "right")
    rng = random.Random(args.seed)
    for name, draw in KINDS.items():
        methods: Counter[str] = Counter()
        backtests: list[float] = []
        ahead: list[float] = []
        inside = total = 0
        for _ in range(args.series):
            series = draw(rng)
            history, following = series[:HISTORY_DAYS], series[HISTORY_DAYS:]
            forecast = forecast_demand(history, horizon=HORIZON)
            methods[forecast.method] += 1
            if forecast.mase is not None:
                backtests.append(forecast.mase)
            naive = [history[-7 + day % 7] for day in range(HORIZON)]
            score = mase([p.quantity for p in forecast.points], following, naive)
            if score is not None:
                ahead.append(score)
            inside += sum(p.lower <= actual <= p.upper for p, actual in zip(forecast.points, following, strict=True))
            total += HORIZON
        deciles = statistics.quantiles(ahead, n=10) if len(ahead) >= 2 else [float("nan")] * 9
        table.add_row(
            name,
            ", ".join(f"{method} {count}" for method, count in methods.most_common()),
            f"{statistics.median(backtests):.2f}" if backtests else "—",
            f"{statistics.median(ahead):.2f} ({deciles[8]:.2f})" if ahead else "—",
            f"{sum(score < 1 for score in ahead) / len(ahead):.0%}" if ahead else "—",
            f"{inside / total:.0%}",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
