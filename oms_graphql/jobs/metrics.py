"""Prometheus counters for jobs."""

from __future__ import annotations

from typing import Any

from dramatiq.middleware import Middleware
from prometheus_client import Counter, Histogram

JOBS = Counter("oms_jobs_total", "Background jobs run, by actor and outcome", ["actor", "outcome"])
JOB_SECONDS = Histogram("oms_job_seconds", "Background job duration", ["actor"])


class JobMetrics(Middleware):
    def before_process_message(self, broker: Any, message: Any) -> None:
        import time

        message.options["_oms_started"] = time.perf_counter()

    def after_process_message(self, broker: Any, message: Any, *, result: Any = None, exception: Any = None) -> None:
        import time

        started = message.options.pop("_oms_started", None)
        if started is not None:
            JOB_SECONDS.labels(message.actor_name).observe(time.perf_counter() - started)
        JOBS.labels(message.actor_name, "failed" if exception else "done").inc()
