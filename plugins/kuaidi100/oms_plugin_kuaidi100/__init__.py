"""Kuaidi100 (快递100) tracking plugin for oms-graphql (see plugin.py)."""
