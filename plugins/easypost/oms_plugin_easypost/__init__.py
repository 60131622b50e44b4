"""EasyPost carrier plugin for oms-graphql (see plugin.py)."""
