"""Allocation planning: which locations ship which units of one order. Pure: no I/O.

The rules, in the order they decide:

1. **Who may serve a line.** A drop-ship SKU only from a SUPPLIER location (the
   supplier ships it to the customer); any other SKU never from a SUPPLIER. Units
   below a location's safety stock are never offered (the caller counts them out).
2. **Fewest locations.** One location that ships every line, if any can; else the
   smallest set that can: every pair, then every triple of the ``TRIPLE_POOL``
   best-placed sites, then a greedy cover (the site that covers most of what is
   left, until nothing is).
3. **Lowest score** among the plans with that many locations. The score is in the
   order's currency, lower is better:

   - the estimated shipping cost of each location's parcel (the rate table of
     :mod:`delivery`: by weight, delivery kind and distance band);
   - ``DISTANCE_WEIGHT`` per km from the location to the customer (a tie-breaker
     within a price band; an end that cannot be placed counts ``UNKNOWN_KM``);
   - ``PRIORITY_WEIGHT`` per point of the location's priority (lower is preferred);
   - ``REORDER_PENALTY`` per line that takes a location below its reorder point,
     and ``BALANCE_WEIGHT`` times the share of its free stock taken, so that a
     location with plenty serves before one that would run low.

``naive_plan`` is the first version's rule, kept for strategy plugins that only rank
locations and as the benchmark's baseline: each line from the first location (in
the given order) with stock, spilling over to the next.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from oms_graphql.domain import delivery, geo
from oms_graphql.plugins.carrier_contract import DeliveryKind

SUPPLIER = "SUPPLIER"
DISTANCE_WEIGHT = 0.002  # per km: 1,000 km weighs as much as 2.00 of shipping
UNKNOWN_KM = 1500.0
PRIORITY_WEIGHT = 0.02  # per priority point: priority 100 against 200 weighs 2.00
REORDER_PENALTY = 3.0
BALANCE_WEIGHT = 1.0
TRIPLE_POOL = 10
# The plans a reason compares the chosen one with.
RUNNERS_UP = 1


@dataclass(frozen=True)
class Want:
    """One order line's units still to place."""

    line_id: int
    product_id: int
    sku: str
    units: int
    weight_grams: int
    longest_mm: int
    handling: frozenset[str]
    drop_ship: bool


@dataclass
class Site:
    """A location as the planner sees it: what it can give of each product now."""

    location_id: int
    code: str
    kind: str
    priority: int
    point: geo.Point | None
    available: dict[int, int]  # product id -> units free above safety stock
    # product id -> units that may go before its reorder point is crossed (absent: no reorder point)
    above_reorder: dict[int, int] = field(default_factory=dict)

    def serves(self, want: Want) -> bool:
        return want.drop_ship == (self.kind == SUPPLIER)

    def free(self, want: Want) -> int:
        return self.available.get(want.product_id, 0) if self.serves(want) else 0


@dataclass(frozen=True)
class Destination:
    point: geo.Point | None
    kind: DeliveryKind  # the rate table's kind for this order
    currency: str
    pickup_location_id: int | None = None  # a store pickup order: shipping there is free


@dataclass(frozen=True)
class Part:
    """What one location ships: (want, units) pairs, with its estimates."""

    site: Site
    takes: tuple[tuple[Want, int], ...]
    km: float | None
    price: Decimal | None
    score: float


@dataclass(frozen=True)
class Plan:
    parts: tuple[Part, ...]
    score: float

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(part.site.code for part in self.parts)


def _km(site: Site, to: Destination) -> float | None:
    if site.point is None or to.point is None:
        return None
    return geo.distance_km(site.point, to.point)


def _part(site: Site, takes: Sequence[tuple[Want, int]], to: Destination) -> Part:
    if to.pickup_location_id == site.location_id:
        km: float | None = 0.0
        price: Decimal | None = Decimal(0)
    else:
        km = _km(site, to)
        weight = sum(want.weight_grams * units for want, units in takes)
        longest = max((want.longest_mm for want, _ in takes), default=0)
        parcel = delivery.Parcel(weight, longest, frozenset().union(*(want.handling for want, _ in takes)))
        price = delivery.estimate_price(to.kind, parcel, to.currency, km)
    score = float(price or 0)
    score += DISTANCE_WEIGHT * (UNKNOWN_KM if km is None else km)
    score += PRIORITY_WEIGHT * site.priority
    for want, units in takes:
        free = site.available.get(want.product_id, 0)
        score += BALANCE_WEIGHT * units / free if free else 0.0
        if want.product_id in site.above_reorder and units > site.above_reorder[want.product_id]:
            score += REORDER_PENALTY
    return Part(site, tuple(takes), km, price, score)


def _assign(sites: Sequence[Site], wants: Sequence[Want], to: Destination) -> Plan | None:
    """The units of ``wants`` spread over exactly ``sites`` (each used), or None if they cannot.

    Each line goes whole to the best-placed site that has all of it; a line no
    single site has is spread from the best-placed down.
    """
    placed = sorted(sites, key=lambda site: (_km(site, to) or UNKNOWN_KM, site.priority, site.code))
    left = {site.location_id: dict(site.available) for site in sites}
    takes: dict[int, list[tuple[Want, int]]] = {site.location_id: [] for site in sites}
    for want in wants:
        whole = next(
            (s for s in placed if s.serves(want) and left[s.location_id].get(want.product_id, 0) >= want.units), None
        )
        if whole is not None:
            takes[whole.location_id].append((want, want.units))
            left[whole.location_id][want.product_id] -= want.units
            continue
        remaining = want.units
        for site in placed:
            give = min(remaining, left[site.location_id].get(want.product_id, 0)) if site.serves(want) else 0
            if give > 0:
                takes[site.location_id].append((want, give))
                left[site.location_id][want.product_id] -= give
                remaining -= give
        if remaining:
            return None
    if any(not takes[site.location_id] for site in sites):
        return None  # a site with nothing to ship: the smaller set is the plan
    parts = tuple(_part(site, takes[site.location_id], to) for site in placed)
    return Plan(parts, sum(part.score for part in parts))


def _covers(sites: Iterable[Site], wants: Sequence[Want]) -> bool:
    sites = list(sites)
    return all(sum(site.free(want) for site in sites) >= want.units for want in wants)


def plans(wants: Sequence[Want], sites: Sequence[Site], to: Destination) -> list[Plan]:
    """Every plan with the fewest locations, best (lowest score) first; empty when the stock is short."""
    useful = [site for site in sites if any(site.free(want) > 0 for want in wants)]
    if not wants or not _covers(useful, wants):
        return []
    for size in (1, 2, 3):
        pool = useful
        if size == 3 and len(useful) > TRIPLE_POOL:
            pool = sorted(useful, key=lambda site: _part(site, [], to).score)[:TRIPLE_POOL]
        found = [
            plan
            for group in itertools.combinations(pool, size)
            if _covers(group, wants)
            for plan in [_assign(group, wants, to)]
            if plan is not None
        ]
        if found:
            return sorted(found, key=lambda plan: (plan.score, plan.codes))
    greedy = _greedy_cover(wants, useful, to)
    return [greedy] if greedy is not None else []


def _greedy_cover(wants: Sequence[Want], sites: Sequence[Site], to: Destination) -> Plan | None:
    chosen: list[Site] = []
    need = {want.line_id: want.units for want in wants}
    while any(need.values()):

        def gain(site: Site) -> tuple[int, float]:
            units = sum(min(need[w.line_id], site.free(w)) for w in wants)
            return units, -_part(site, [], to).score

        best = max((site for site in sites if site not in chosen), key=gain, default=None)
        if best is None or gain(best)[0] == 0:
            return None
        chosen.append(best)
        for want in wants:
            need[want.line_id] -= min(need[want.line_id], best.free(want))
    return _assign(chosen, wants, to)


def naive_plan(wants: Sequence[Want], ranked: Sequence[Site], to: Destination) -> Plan | None:
    """Each line from the first site in ``ranked`` with stock, spilling over to the next."""
    left = {site.location_id: dict(site.available) for site in ranked}
    takes: dict[int, list[tuple[Want, int]]] = {}
    for want in wants:
        remaining = want.units
        for site in ranked:
            give = min(remaining, left[site.location_id].get(want.product_id, 0)) if site.serves(want) else 0
            if give > 0:
                takes.setdefault(site.location_id, []).append((want, give))
                left[site.location_id][want.product_id] -= give
                remaining -= give
            if not remaining:
                break
        if remaining:
            return None
    parts = tuple(_part(site, takes[site.location_id], to) for site in ranked if site.location_id in takes)
    return Plan(parts, sum(part.score for part in parts))


# --- what a person reads ------------------------------------------------------

_SYMBOLS = {"CNY": "¥", "USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def _money(amount: Decimal | None, currency: str) -> str:
    if amount is None:
        return "no estimate"
    symbol = _SYMBOLS.get(currency)
    return f"est. {symbol}{amount:,.2f}" if symbol else f"est. {amount:,.2f} {currency}"


def _where(part: Part, currency: str) -> str:
    km = "distance unknown" if part.km is None else f"{part.km:,.0f} km"
    return f"{km}, {_money(part.price, currency)}"


def reason(plan: Plan, part: Part, wants: Sequence[Want], others: Sequence[Plan], currency: str) -> str:
    """Why ``part``'s location ships what it ships, against the next best plans (≤ 300 characters).

    E.g. ``WH-SH: ships all 3 lines, 212 km, est. ¥14.00; WH-BJ: 1,080 km, est. ¥18.00``.
    """
    lines = len({want.line_id for want in wants})
    mine = len({want.line_id for want, _ in part.takes})
    what = f"ships all {lines} line{'s' * (lines != 1)}" if mine == lines else f"{mine} of {lines} lines"
    text = f"{part.site.code}: {what}, {_where(part, currency)}"
    if len(plan.parts) > 1:
        text += f"; split {len(plan.parts)} ways, no location has every line"
    for other in others[:RUNNERS_UP]:
        text += "; " + " + ".join(f"{p.site.code}: {_where(p, currency)}" for p in other.parts)
    return text if len(text) <= 300 else text[:299] + "…"
