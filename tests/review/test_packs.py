"""Rule packs (planner.rules) as the review loads them: bundled values, user packs, clashes."""

from __future__ import annotations

import math
import re

import pytest

from planner._errors import InputError
from planner.review import load_packs
from planner.rules import MEASURES, list_rulepacks, load_rulepack

from .plans import FACTS, RADIUS_RULE, write_pack


def test_bundled_packs_load_and_are_complete():
    names = list_rulepacks()
    for required in ("gb50180-2018", "community-service", "elderly-childcare"):
        assert required in names
    provincial = [n for n in names if n.startswith("elderly-care-")]
    assert len(provincial) >= 4
    for name in names:
        pack = load_rulepack(name)
        assert pack.id == name
        for rule in pack.rules:
            assert rule.id and rule.title_zh and rule.title_en and rule.clause and rule.source
            assert rule.unit in MEASURES[rule.measure]
    for name in provincial:
        pack = load_rulepack(name)
        assert pack.scope == "provincial" and pack.province


def test_gb50180_values_and_confirmation_flags():
    pack = load_rulepack("gb50180-2018")
    rules = {r.id: r for r in pack.rules}
    # Radii are confirmed in the facts file; building/land areas and per-1,000 indicators are not.
    assert rules["gb50180.5min.kindergarten.radius"].threshold == 300
    assert rules["gb50180.5min.kindergarten.radius"].confirmed
    assert rules["gb50180.15min.middle_school.radius"].threshold == 1000
    assert rules["gb50180.10min.primary_school.radius"].threshold == 500
    assert rules["gb50180.5min.kindergarten.floor_area"].threshold == [3150, 4550]
    assert rules["gb50180.10min.market.floor_area"].threshold == [[750, 1500], [2000, 2500]]
    assert rules["gb50180.5min.per1000.land"].threshold == [1710, 2210]
    for r in pack.rules:
        if r.measure in ("facility_area_range", "area_per_1000_residents"):
            assert not r.confirmed, r.id
        if r.measure == "service_radius_share":
            assert r.confirmed, r.id
    levels = {lv.id: lv for lv in pack.levels}
    assert levels["5min"].households == (1500, 4000) and not levels["5min"].confirmed
    assert levels["15min"].population == (50000, 100000) and levels["15min"].confirmed
    ministry = {r.id: r for r in load_rulepack("community-service").rules}
    assert ministry["community_service.area_per_100_households"].threshold == 30
    assert ministry["community_service.area_per_100_households"].confirmed
    hubei = load_rulepack("elderly-care-hubei").rules[0]
    anhui = load_rulepack("elderly-care-anhui").rules[0]
    # Read in reproductions of the Hubei notice (2022) and the Anhui 细则 (2022): local rules.
    assert (hubei.threshold, anhui.threshold) == (20, 30) and hubei.confirmed and anhui.confirmed
    assert hubei.strength == anhui.strength == "local"
    # 应 clauses (presence, per-1,000 indicators, green space) fail the estate; 宜 clauses
    # (appendix areas per facility, service radii) only advise.
    for r in pack.rules:
        expected = {
            "facility_present": "mandatory",
            "area_per_1000_residents": "mandatory",
            "green_space_per_resident": "mandatory",
            "green_space_park": "mandatory",
            "facility_area_range": "advisory",
            "service_radius_share": "advisory",
        }[r.measure]
        assert r.strength == expected, r.id
        assert r.level in ("15min", "10min", "5min", "block"), r.id
    # The nursery's 1,200 m² was a 4-class land area of the superseded 2002 table: no longer checked.
    assert "gb50180.5min.nursery.floor_area" not in rules
    assert not any(r.category == "childcare" and r.measure == "facility_area_range" for r in pack.rules)


@pytest.mark.shared
def test_pack_numbers_appear_in_the_facts_file():
    """No invented values: every threshold number of a bundled pack is written in the facts file."""
    if not FACTS.exists():
        pytest.skip("../shared/standards/life_circle_facts.md not present")
    text = FACTS.read_text(encoding="utf-8").replace(",", "")
    numbers = set(re.findall(r"\d+(?:\.\d+)?", text))
    for name in list_rulepacks():
        for rule in load_rulepack(name).rules:
            for lo, hi in rule.ranges:
                for v in (lo, hi):
                    if math.isfinite(v) and not (rule.measure == "facility_present" and v == 1):
                        assert f"{v:g}" in numbers, (rule.id, v)


def test_user_pack_from_path(tmp_path):
    pack = load_rulepack(write_pack(tmp_path / "city.toml", RADIUS_RULE))
    assert pack.id == "test-pack" and pack.rules[0].threshold == 300


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            RADIUS_RULE.replace('measure = "service_radius_share"', 'measure = "walkability"'),
            "unknown measure 'walkability'",
        ),
        (
            RADIUS_RULE.replace('category = "kindergarten"', 'category = "kindergarden"'),
            "unknown category 'kindergarden'",
        ),
        (RADIUS_RULE.replace('unit = "m"', 'unit = "km"'), "unit 'km' does not fit"),
        (RADIUS_RULE.replace('clause = "test"\n', ""), "missing clause"),
        (RADIUS_RULE.replace("threshold = 300", "threshold = -5"), "must not be negative"),
        (RADIUS_RULE + RADIUS_RULE, "appears twice"),
    ],
)
def test_bad_user_pack(tmp_path, body, message):
    with pytest.raises(InputError, match=re.escape(message)):
        load_rulepack(write_pack(tmp_path / "bad.toml", body))


def test_unknown_pack_name_lists_the_bundled_ones():
    with pytest.raises(InputError, match="gb50180-2018"):
        load_packs("gb50180-2081")


def test_same_rule_id_in_two_packs_is_refused(tmp_path):
    a = write_pack(tmp_path / "a.toml", RADIUS_RULE, "a")
    b = write_pack(tmp_path / "b.toml", RADIUS_RULE, "b")
    with pytest.raises(InputError, match=r"t.kindergarten.radius"):
        load_packs([a, b])
