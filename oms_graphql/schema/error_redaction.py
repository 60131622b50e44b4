"""No GraphQL answer repeats a secret: errors and userErrors are masked by key and by value.

graphql-core echoes a variable it cannot coerce ("got invalid value {'settings':
{'appSecret': …}}"), and a plugin's message may quote what it was given. While a
request runs, the secrets it carries (values under credential keys in its
variables) are masked too, on top of every secret the process already knows
(``oms_graphql/redaction.py``); userErrors are masked where they are built
(``schema/payloads.user_errors``).
"""

from __future__ import annotations

from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from oms_graphql import redaction


class RedactSecrets(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        with redaction.request_secrets(redaction.secrets_in(context.variables or {})):
            yield
            result = context.result
            for error in (getattr(result, "errors", None) or []) + list(context.pre_execution_errors or []):
                masked = redaction.redact(error.message)
                if masked != error.message:
                    error.message = masked
