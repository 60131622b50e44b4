"""Notifier plugin: every alert becomes one WARNING line in the ``oms.alerts`` log."""
