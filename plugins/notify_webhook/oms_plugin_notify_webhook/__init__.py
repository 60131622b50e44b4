"""Notifier plugin: POST each alert as JSON to ``OMS_NOTIFY_WEBHOOK_URL``."""
