"""Domain events: the outbox written with each change, the relay, and pub/sub."""
