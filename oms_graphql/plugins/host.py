"""The plugin host: one pluggy manager per process, loaded from entry points."""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import pluggy

from oms_graphql.plugins import hookspecs
from oms_graphql.plugins.carrier_contract import CarrierKind
from oms_graphql.plugins.contract import AllocationRequest, CandidateLocation, ChannelKind


@dataclass(frozen=True)
class InstalledPlugin:
    name: str
    version: str | None
    distribution: str | None
    kinds: tuple[str, ...]  # channel, notifier, allocation, carrier
    hooks: tuple[str, ...]


_HOOK_KINDS = {
    "oms_channel_": "channel",
    "oms_carrier_": "carrier",
    "oms_notify": "notifier",
    "oms_allocation_": "allocation",
    "oms_stock_": "stock",
}


def _new_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    return manager


# Hook implementations that ship inside the OMS itself (name -> object), e.g. the job
# layer's reaction to stock changes. They survive reset_plugins().
_builtin: dict[str, Any] = {}


def register_builtin(name: str, plugin: Any) -> None:
    """Register an implementation that is part of the OMS (not installed by entry point)."""
    _builtin[name] = plugin
    if plugin_manager.cache_info().currsize:
        manager = plugin_manager()
        if manager.get_plugin(name) is None:
            manager.register(plugin, name=name)


@lru_cache(maxsize=1)
def plugin_manager() -> pluggy.PluginManager:
    """The process's plugin manager, with every installed plugin registered."""
    manager = _new_manager()
    manager.load_setuptools_entrypoints(hookspecs.ENTRY_POINT_GROUP)
    for name, plugin in _builtin.items():
        manager.register(plugin, name=name)
    # A misspelt hook name fails loudly at start-up instead of never being called.
    manager.check_pending()
    return manager


def reset_plugins() -> None:
    plugin_manager.cache_clear()


def installed_plugins() -> list[InstalledPlugin]:
    manager = plugin_manager()
    distributions = {id(plugin): dist for plugin, dist in manager.list_plugin_distinfo()}
    found = []
    for name, plugin in manager.list_name_plugin():
        if plugin is None:
            continue
        hooks = tuple(sorted(caller.name for caller in manager.get_hookcallers(plugin) or ()))
        kinds = tuple(
            sorted({kind for prefix, kind in _HOOK_KINDS.items() for hook in hooks if hook.startswith(prefix)})
        )
        dist = distributions.get(id(plugin))
        builtin = name in _builtin and dist is None
        found.append(
            InstalledPlugin(
                name=name,
                version=dist.version if dist else (distribution_version("oms-graphql") if builtin else None),
                distribution=dist.project_name if dist else ("oms-graphql" if builtin else None),
                kinds=kinds,
                hooks=hooks,
            )
        )
    return sorted(found, key=lambda plugin: plugin.name)


def channel_kinds() -> dict[str, ChannelKind]:
    kinds: dict[str, ChannelKind] = {
        "manual": ChannelKind(kind="manual", name="Manual orders (phone, e-mail, in store)", pulls_orders=False)
    }
    for answer in plugin_manager().hook.oms_channel_kinds():
        for kind in answer or ():
            kinds[kind.kind] = kind
    return kinds


def carrier_kinds() -> dict[str, CarrierKind]:
    kinds: dict[str, CarrierKind] = {}
    for answer in plugin_manager().hook.oms_carrier_kinds():
        for kind in answer or ():
            kinds[kind.kind] = kind
    return kinds


def allocation_ranker() -> Any:
    """A ranking function backed by allocation plugins, or None when none is installed."""
    hook = plugin_manager().hook.oms_allocation_rank
    if not hook.get_hookimpls():
        return None

    def rank(request: AllocationRequest, candidates: list[CandidateLocation]) -> list[str] | None:
        return hook(request=request, candidates=candidates)

    return rank


def distribution_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None
