"""What the last reconciliation (补单) of a channel found."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry


@strawberry.type(
    description="The last reconciliation of a channel: its orders changed in [since, until) listed again, "
    "and every one not stored yet stored now."
)
class ChannelReconcileSummary:
    since: datetime = strawberry.field(description="Start of the listed window.")
    until: datetime = strawberry.field(description="End of the listed window.")
    listed: int = strawberry.field(description="Orders the channel listed (each once).")
    already_stored: int = strawberry.field(description="Listed orders whose version was stored already.")
    newly_stored: int = strawberry.field(description="Orders (or newer versions) stored by this reconciliation.")
    failed: int = strawberry.field(description="Of the newly stored, how many could not be read (see inboundMessages).")
    finished_at: datetime = strawberry.field(description="When it finished.")

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ChannelReconcileSummary | None:
        if not data:
            return None
        return cls(
            since=datetime.fromisoformat(data["since"]),
            until=datetime.fromisoformat(data["until"]),
            listed=int(data["listed"]),
            already_stored=int(data["alreadyStored"]),
            newly_stored=int(data["newlyStored"]),
            failed=int(data.get("failed", 0)),
            finished_at=datetime.fromisoformat(data["finishedAt"]),
        )
