"""Store POS (Square) channel plugin: verifies and expands webhooks, polls sales, pushes store stock."""
