"""SF Express (顺丰) carrier plugin for oms-graphql (SF Open Platform 丰桥, ``/std/service``)."""
