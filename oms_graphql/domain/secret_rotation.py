"""Key rotation for channel and carrier credentials: re-encrypt every stored secret with OMS_SECRET_KEY.

The procedure (README, "Secrets at rest"): move the old key to OMS_PREVIOUS_SECRET_KEYS and set
a new OMS_SECRET_KEY on every process (they read both from then on), run ``oms secrets rotate``,
then drop the old key. Each account is re-encrypted in a transaction of its own with its row
locked, so a rotation that is stopped half way is simply run again, and an update made at the
same time is never overwritten.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import func, select

from oms_graphql.db.engine import Database
from oms_graphql.db.models import Carrier, Channel
from oms_graphql.domain.plugin_settings import SecretsUnreadable, reencrypt_secrets

_ACCOUNTS: tuple[tuple[str, type[Channel] | type[Carrier]], ...] = (("channel", Channel), ("carrier", Carrier))


@dataclass
class RotationReport:
    reencrypted: int = 0
    # "channel tmall-flagship", ... whose secrets no configured key decrypts (left as they were).
    unreadable: list[str] = field(default_factory=list)


async def count_accounts_with_secrets(database: Database) -> int:
    async with database.session() as session:
        total = 0
        for _, model in _ACCOUNTS:
            total += int(await session.scalar(select(func.count()).where(model.secrets_encrypted.is_not(None))) or 0)
        return total


async def rotate_secrets(database: Database, progress: Callable[[str], None] = lambda _: None) -> RotationReport:
    """Re-encrypt every channel's and carrier's secrets with the current key; ``progress`` hears each account."""
    report = RotationReport()
    for noun, model in _ACCOUNTS:
        async with database.session() as session:
            ids = list(
                (
                    await session.scalars(
                        select(model.id).where(model.secrets_encrypted.is_not(None)).order_by(model.id)
                    )
                ).all()
            )
        for account_id in ids:
            async with database.session() as session, session.begin():
                account: Channel | Carrier | None = await session.get(model, account_id, with_for_update=True)
                if account is None or not account.secrets_encrypted:
                    continue  # deleted or cleared meanwhile
                label = f"{noun} {account.code}"
                try:
                    account.secrets_encrypted = reencrypt_secrets(account.secrets_encrypted)
                    report.reencrypted += 1
                except SecretsUnreadable:
                    report.unreadable.append(label)
            progress(label)
    return report
