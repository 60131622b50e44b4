"""The example-shop channel: a minimal third-party plugin for oms-graphql (see docs/plugins.md)."""
