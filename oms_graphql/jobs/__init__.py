"""Background jobs: Dramatiq broker setup and the actors.

Call :func:`setup` once per process before sending or running jobs; it picks
the broker from ``OMS_BROKER_URL`` and declares the actors on it.
"""

from oms_graphql.jobs.broker import current_broker, send_job, setup

__all__ = ["current_broker", "send_job", "setup"]
