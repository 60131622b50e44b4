"""Taobao / Tmall channel plugin for oms-graphql (Taobao Open Platform, TOP)."""
