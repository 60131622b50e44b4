"""GraphQL types, inputs, payloads, the request context and permissions."""
