"""planner.rules: bundled and user rule packs, read through load_rulepack and list_rulepacks.

The bundled packs' values are checked against the standards in test_review; here: which
packs exist, how a pack's fields are read (thresholds, defaults, levels, applies), the
the example pack of docs/review.md, and the one-line refusals of a malformed pack.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from planner import InputError
from planner.rules import LEVELS, MEASURES, STRENGTHS, list_rulepacks, load_rulepack

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = [
    "community-service",
    "elderly-care-anhui",
    "elderly-care-guizhou",
    "elderly-care-hubei",
    "elderly-care-ningxia-yinchuan",
    "elderly-childcare",
    "gb50180-2018",
]

HEAD = '[pack]\nid = "city-test"\ntitle_zh = "测试"\ntitle_en = "Test"\nsource = "city rules (2024)"\n'
RULE = """
[[rule]]
id = "c.elderly"
title_zh = "养老"
title_en = "Elderly care"
clause = "第1条"
confirmed = true
strength = "local"
measure = "area_per_100_households"
category = "elderly_care"
threshold = 30
unit = "m²/100 households"
"""


def _pack(tmp_path: Path, text: str, name: str = "pack.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_list_rulepacks_names_the_bundled_files_sorted():
    assert list_rulepacks() == BUNDLED
    files = sorted(p.stem for p in (ROOT / "planner" / "rules").glob("*.toml"))
    assert files == BUNDLED


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_pack_by_id_equals_the_same_file_by_path(name):
    by_id = load_rulepack(name)
    by_path = load_rulepack(ROOT / "planner" / "rules" / f"{name}.toml")
    assert by_id.id == by_path.id == name
    assert [r.id for r in by_id.rules] == [r.id for r in by_path.rules]
    assert len(by_id.rules) >= 1
    for rule in by_id.rules:
        assert rule.pack == name
        assert rule.strength in STRENGTHS
        assert rule.unit in MEASURES[rule.measure]
        assert rule.level is None or rule.level in LEVELS


def test_gb50180_levels_in_the_standards_order_and_scale():
    levels = load_rulepack("gb50180-2018").levels
    assert [lv.id for lv in levels] == list(LEVELS)  # cl. 3.0.4, largest first
    by_id = {lv.id: lv for lv in levels}
    assert by_id["15min"].households == (17000, 32000)
    assert by_id["10min"].households == (5000, 8000)
    assert by_id["5min"].households == (1500, 4000)
    assert by_id["block"].households == (300, 1000)


def test_a_user_pack_takes_the_defaults_it_leaves_out(tmp_path):
    pack = load_rulepack(_pack(tmp_path, HEAD + RULE))
    assert (pack.id, pack.scope, pack.title_en) == ("city-test", "user", "Test")  # scope defaults to user
    (rule,) = pack.rules
    assert rule.source == "city rules (2024)"  # the pack's source when the rule has none
    assert rule.ranges == ((30.0, math.inf),) and rule.threshold == 30
    assert (rule.area, rule.min_share, rule.enforce_max, rule.level) == ("floor", 1.0, True, None)
    assert rule.target_categories == ("elderly_care",)
    assert rule.applies_level == () and rule.applies_households is None


@pytest.mark.parametrize(
    ("threshold", "ranges", "written"),
    [
        ("30", ((30.0, math.inf),), 30),
        ("[20, 40]", ((20.0, 40.0),), [20, 40]),
        ("[[750, 1500], [2000, 2500]]", ((750.0, 1500.0), (2000.0, 2500.0)), [[750, 1500], [2000, 2500]]),
        ("[0, inf]", ((0.0, math.inf),), 0),
    ],
)
def test_threshold_forms_become_ranges(tmp_path, threshold, ranges, written):
    pack = load_rulepack(_pack(tmp_path, HEAD + RULE.replace("threshold = 30", f"threshold = {threshold}")))
    assert pack.rules[0].ranges == ranges
    assert pack.rules[0].threshold == written


def test_categories_list_and_no_category_mean_what_they_say(tmp_path):
    several = RULE.replace('category = "elderly_care"', 'categories = ["elderly_care", "community_service"]')
    everything = RULE.replace('category = "elderly_care"\n', "").replace('id = "c.elderly"', 'id = "c.all"')
    pack = load_rulepack(_pack(tmp_path, HEAD + several + everything))
    assert pack.rules[0].target_categories == ("elderly_care", "community_service")
    assert pack.rules[1].target_categories == ()  # every facility


def test_the_docs_example_pack_loads_as_described(tmp_path):
    """The Hefei pack of docs/review.md "Rule packs" is valid and reads as its comments say."""
    guide = (ROOT / "docs" / "review.md").read_text(encoding="utf-8")
    block = re.search(r"```toml\n(\[pack\].*?)```", guide, re.S)
    assert block, "docs/review.md has no [pack] example"
    pack = load_rulepack(_pack(tmp_path, block.group(1), "hefei.toml"))
    assert (pack.id, pack.scope, pack.city) == ("hefei-2023", "city", "合肥市 Hefei")
    (rule,) = pack.rules
    assert rule.id == "hefei.elderly.per100" and rule.strength == "local" and rule.confirmed
    assert rule.level == "5min" and rule.applies_households == (1000, 100000)
    assert rule.measure == "area_per_100_households" and rule.area == "floor"
    assert rule.ranges == ((30.0, math.inf),) and rule.unit == "m²/100 households"
    assert rule.note == "optional text shown in the report"


def test_applies_and_level_are_read(tmp_path):
    text = RULE.replace(
        'strength = "local"',
        'strength = "advisory"\nlevel = "10min"\napplies = { level = "15min", population = [0, 5e4] }',
    )
    (rule,) = load_rulepack(_pack(tmp_path, HEAD + text)).rules
    assert rule.strength == "advisory" and rule.level == "10min"
    assert rule.applies_level == ("15min",) and rule.applies_population == (0.0, 50000.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (RULE, "no [pack] table"),
        (HEAD.replace('source = "city rules (2024)"\n', "") + RULE, "[pack] is missing source"),
        (HEAD.replace('id = "city-test"', 'id = "city test"') + RULE, "may only use letters, digits"),
        (HEAD + 'scope = "provincial"\n' + RULE, "must name its province"),
        (HEAD, "no [[rule]] entries"),
        (HEAD + RULE.replace("strength", "strenght"), "missing strength"),
        (
            HEAD + RULE.replace('strength = "local"', 'strength = "should"'),
            "strength 'should' must be one of",
        ),
        (HEAD + RULE + 'colour = "red"\n', "unknown field 'colour'"),
        (HEAD + RULE.replace("confirmed = true", 'confirmed = "yes"'), "must be true or false"),
        (HEAD + RULE.replace("threshold = 30", "threshold = [40, 20]"), "min 40 is above max 20"),
        (HEAD + RULE.replace("threshold = 30", 'threshold = "30"'), "is not a number"),
        (HEAD + RULE + 'area = "wall"\n', "area 'wall'"),
        (HEAD + RULE + 'level = "20min"\n', "level '20min' must be one of"),
        (HEAD + RULE + "applies = { city = 1 }\n", "applies.city is not known"),
        (
            HEAD + RULE.replace("area_per_100_households", "adjacent_to").replace("m²/100 households", "m"),
            "other_category is needed by measure adjacent_to",
        ),
        (
            HEAD
            + RULE.replace("area_per_100_households", "green_space_per_resident")
            .replace("m²/100 households", "m²/resident")
            .replace('category = "elderly_care"\n', ""),
            "needs level",
        ),
        (
            HEAD
            + RULE.replace("area_per_100_households", "activity_share")
            .replace("m²/100 households", "%")
            .replace("threshold = 30", "threshold = 160"),
            "in per cent (0–100)",
        ),
        (
            HEAD
            + RULE.replace("area_per_100_households", "service_radius_share")
            .replace("m²/100 households", "m")
            .replace("threshold = 30", "threshold = [300, 500]"),
            "one distance in metres",
        ),
        (
            HEAD
            + RULE.replace("area_per_100_households", "service_radius_share")
            .replace("m²/100 households", "m")
            .replace("threshold = 30", "threshold = 300\nmin_share = 0"),
            "min_share 0.0 must be in (0, 1]",
        ),
        (HEAD + RULE.replace("threshold = 30", "threshold = 30\n[oops"), "not valid TOML"),
    ],
)
def test_a_malformed_pack_is_one_line_naming_the_file(tmp_path, text, message):
    path = _pack(tmp_path, text)
    with pytest.raises(InputError, match=re.escape(message)) as err:
        load_rulepack(path)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_names_and_missing_files(tmp_path):
    with pytest.raises(
        InputError, match=re.escape("unknown rule pack 'gb50180'; bundled packs: community-service")
    ):
        load_rulepack("gb50180")
    with pytest.raises(InputError, match="rule pack file not found"):
        load_rulepack(tmp_path / "absent.toml")
