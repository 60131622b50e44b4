"""Where an address roughly is, and how far apart two places are.

Allocation ranks locations by distance to the buyer, and most channel addresses come
without coordinates. ``locate`` places an address on the point of the smallest area it
can recognise, from the gazetteer in ``data/centroids.csv`` (how it is built, from which
packages, and what is missing: ``data/README.md`` beside it):

- China: the prefecture-level division (地级市, 地区, 自治州, 盟) or province-administered
  county-level city (济源, 仙桃, 石河子…), then the province-level division. Points are
  the seats of government as the source gives them.
- United States: the ZIP3 area (first three digits of the ZIP code), then the state.
  Points are the mean of the area's ZIP code points.

Everything here is pure: the gazetteer is read from the package once and cached.
"""

from __future__ import annotations

import csv
import functools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Protocol

# Mean Earth radius (IUGG): the sphere that best fits the ellipsoid overall.
EARTH_RADIUS_KM = 6371.0088

# Suffixes a buyer or a channel may or may not write: 浙江 / 浙江省, 杭州 / 杭州市, 延边 /
# 延边朝鲜族自治州 (the data's aliases cover the ethnic names; these cover the rest).
_NAME_SUFFIXES = ("特别行政区", "自治区", "自治州", "地区", "省", "市", "盟")

_US_ZIP = re.compile(r"(\d{3})\d{2}(?:[-\s]?\d{4})?")  # 10001, 10001-1234, 10001 1234, 100011234


@dataclass(frozen=True, slots=True)
class Point:
    """A place on the globe in decimal degrees (north and east positive)."""

    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Place:
    """One row of the gazetteer.

    ``kind`` is ``province``, ``prefecture``, ``county`` (a county-level city that its
    province administers directly), ``state`` or ``zip3``. ``code`` is the GB/T 2260
    code (``330100``), the USPS state code (``NY``) or the ZIP3 (``100``); ``parent`` is
    the province code of a prefecture or county and the main state of a ZIP3; ``iso``
    is the ISO 3166-2 code of a province or state (``CN-ZJ``, ``US-NY``).
    """

    kind: str
    code: str
    parent: str
    name: str
    aliases: tuple[str, ...]
    iso: str
    point: Point


def _key(name: str) -> str:
    return "".join(name.split()).casefold()


def _keys(name: str) -> list[str]:
    """The lookup keys of a name as written: as is, then without its suffix."""
    key = _key(name)
    keys = [key]
    for suffix in _NAME_SUFFIXES:
        if key.endswith(suffix) and len(key) > len(suffix) + 1:
            keys.append(key[: -len(suffix)])
            break
    return keys


def _index(places: Iterable[Place]) -> dict[str, tuple[Place, ...]]:
    index: dict[str, tuple[Place, ...]] = {}
    for place in places:
        names = {place.name, *place.aliases, place.code}
        if place.iso:
            names |= {place.iso, place.iso.split("-", 1)[1]}
        for key in {_key(n) for n in names if n}:
            index[key] = (*index.get(key, ()), place)
    return index


@dataclass(frozen=True)
class Gazetteer:
    """Every place ``locate`` knows, by kind, and the name indexes it searches."""

    provinces: tuple[Place, ...]
    prefectures: tuple[Place, ...]
    counties: tuple[Place, ...]
    states: tuple[Place, ...]
    zip3: Mapping[str, Place]
    _provinces_by_name: dict[str, tuple[Place, ...]] = field(repr=False)
    _cities_by_name: dict[str, tuple[Place, ...]] = field(repr=False)
    _states_by_name: dict[str, tuple[Place, ...]] = field(repr=False)
    _provinces_with_prefectures: frozenset[str] = field(repr=False)

    @classmethod
    def from_places(cls, places: Iterable[Place]) -> Gazetteer:
        by_kind: dict[str, list[Place]] = {"province": [], "prefecture": [], "county": [], "state": [], "zip3": []}
        for place in places:
            by_kind[place.kind].append(place)
        cities = by_kind["prefecture"] + by_kind["county"]
        return cls(
            provinces=tuple(by_kind["province"]),
            prefectures=tuple(by_kind["prefecture"]),
            counties=tuple(by_kind["county"]),
            states=tuple(by_kind["state"]),
            zip3={p.code: p for p in by_kind["zip3"]},
            _provinces_by_name=_index(by_kind["province"]),
            _cities_by_name=_index(cities),
            _states_by_name=_index(by_kind["state"]),
            _provinces_with_prefectures=frozenset(p.parent for p in by_kind["prefecture"]),
        )

    def province(self, name: str | None) -> Place | None:
        """A Chinese province-level division by full name, short name, pinyin or ISO code."""
        return _unique(_find(self._provinces_by_name, name))

    def city(self, name: str | None, within: Place | None = None) -> Place | None:
        """A prefecture or province-administered county-level city, by name.

        With ``within`` (a province), only that province's cities count, which also
        settles a name two provinces share. A municipality or SAR (上海, 香港) is its
        own city, so ``city("上海市")`` is Shanghai.
        """
        candidates = _find(self._cities_by_name, name)
        if within is not None:
            candidates = [c for c in candidates if c.parent == within.code]
        if candidates:
            return _unique(candidates)
        itself = self.province(name)
        if itself is None or itself.code in self._provinces_with_prefectures:
            return None
        return itself if within is None or within == itself else None

    def state(self, name: str | None) -> Place | None:
        """A US state or DC by USPS code (``NY``), ISO code (``US-NY``) or name."""
        return _unique(_find(self._states_by_name, name))


def _find(index: dict[str, tuple[Place, ...]], name: str | None) -> list[Place]:
    if not name or not name.strip():
        return []
    for key in _keys(name):
        if key in index:
            return list(index[key])
    return []


def _unique(candidates: list[Place]) -> Place | None:
    return candidates[0] if len(candidates) == 1 else None


def _parse(lines: Iterable[str]) -> Gazetteer:
    rows = csv.DictReader(line for line in lines if not line.startswith("#"))
    return Gazetteer.from_places(
        Place(
            kind=row["kind"],
            code=row["code"],
            parent=row["parent"],
            name=row["name"],
            aliases=tuple(a for a in row["aliases"].split("|") if a),
            iso=row["iso"],
            point=Point(float(row["lat"]), float(row["lon"])),
        )
        for row in rows
    )


@functools.cache
def gazetteer() -> Gazetteer:
    """The packaged gazetteer, read on first use and kept for the life of the process."""
    source = resources.files(__package__ or "oms_graphql.domain") / "data" / "centroids.csv"
    return _parse(source.read_text(encoding="utf-8").splitlines())  # no field spans lines


def distance_km(a: Point, b: Point) -> float:
    """Great-circle distance in km (haversine on a sphere of the mean Earth radius).

    Within about 0.5% of the distance on the WGS-84 ellipsoid; far more exact than the
    points ``locate`` returns, and not a road distance (roads run 20-40% longer).
    """
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    dlat = lat2 - lat1
    dlon = math.radians(b.lon - a.lon)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


class Placeable(Protocol):
    """An address or a location: its coordinates if known, and its names."""

    latitude: float | None
    longitude: float | None
    country: str
    region: str | None
    city: str | None
    district: str | None
    postal_code: str | None


def point_of(place: Placeable) -> Point | None:
    """Its own coordinates when it has them, else where ``locate`` puts it."""
    if place.latitude is not None and place.longitude is not None:
        return Point(place.latitude, place.longitude)
    return locate(place.country, place.region, place.city, place.district, place.postal_code)


def locate(
    country: str | None,
    region: str | None = None,
    city: str | None = None,
    district: str | None = None,
    postal_code: str | None = None,
) -> Point | None:
    """The point of the smallest area this address can be placed in, or None.

    ``country`` is ISO 3166-1 alpha-2; the other fields are those of a normalized
    address. Names match with or without their suffix (浙江省/浙江, 杭州市/杭州,
    内蒙古自治区/内蒙古, 延边朝鲜族自治州/延边/延边州), by pinyin (Zhejiang) and by ISO
    3166-2 code (CN-ZJ or ZJ); US states by USPS code, ISO code or name, any case.

    China (CN): the city's prefecture; else ``district`` as a province-administered
    county-level city (some channels put 河南 济源 there, with no city); else the
    province. A city that is not in the given province is ignored in favour of the
    province. The 4 municipalities and 2 SARs are their own city; their districts are
    not told apart. United States (US): the ZIP3 of a 5-digit or ZIP+4 code; else the
    state. Any other country, or nothing recognised: None.

    Precision: a prefecture's point is its seat, typically within 30-100 km of the
    address and a few hundred km in the largest prefectures (阿里, 海西, 巴音郭楞). A
    province-only match can be 1,000 km off in Xinjiang, Tibet or Inner Mongolia. A ZIP3
    point is the mean of its ZIP codes, typically within 20-80 km (more in the rural
    West and Alaska); a state-only match is off by up to several hundred km. Good for
    ranking warehouses by distance, not for zones or delivery promises.
    """
    g = gazetteer()
    match (country or "").strip().upper():
        case "CN":
            province = g.province(region)
            for name in (city, district):
                place = g.city(name, within=province)
                if place is not None:
                    return place.point
            return province.point if province is not None else None
        case "US":
            zip_match = _US_ZIP.fullmatch((postal_code or "").strip())
            if zip_match and zip_match.group(1) in g.zip3:
                return g.zip3[zip_match.group(1)].point
            state = g.state(region)
            return state.point if state is not None else None
        case _:
            return None
