"""Business rules as plain Python: no GraphQL, no HTTP, no jobs, no plugins."""
