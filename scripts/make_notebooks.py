"""Write the notebooks in notebooks/ from the cell lists below (committed without outputs).

    python scripts/make_notebooks.py

Keeping the source here makes notebook diffs readable; the .ipynb files are what users open.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]

SHOW_MAP = '''import html
import warnings
from IPython.display import HTML
from planner.maps import offline_html

def show(m, height=480):
    """Show a folium map inline with Leaflet embedded, so it works with no internet."""
    warnings.filterwarnings("ignore", message="Consider using IPython.display.IFrame")
    return HTML(f'<iframe srcdoc="{html.escape(offline_html(m))}" style="width:100%;height:{height}px;border:0"></iframe>')'''

URBAN = [
    new_markdown_cell(
        "# 城市十五分钟生活圈体检 · An urban 15-minute life-circle check\n\n"
        "This notebook walks through what a planner does with `planner` in a city district:\n\n"
        "1. load a real OpenStreetMap extract (Nanjing, Xinjiekou — bundled, no download);\n"
        "2. **audit**: the walking time from every home to the nearest facility of each daily-life category, "
        "and who is inside the 5/10/15-minute circles;\n"
        "3. find the **gaps**;\n"
        "4. **site** new facilities where they help most, with before/after figures;\n"
        "5. **review** a new estate's plan against the facility rules (GB 50180-2018 and the ministry's indicators).\n\n"
        "Everything runs offline. Maps embed their JavaScript, so they show on an intranet too."
    ),
    new_code_cell(
        "import pandas as pd\nfrom planner import audit, load_region, settings\nsettings.progress = False\n\n"
        + SHOW_MAP
    ),
    new_markdown_cell(
        "## 1. Load the district\n\n`load_region` reads `.osm` or `.osm.pbf` files (or a bundled sample by name) and projects "
        "them to the local UTM zone, so distances are in metres."
    ),
    new_code_cell(
        'region = load_region("nanjing_xinjiekou")\n'
        'print(region.name, region.crs, f"{len(region.node_id):,} street nodes, {len(region.features):,} mapped features")'
    ),
    new_markdown_cell(
        "## 2. Audit the life circles\n\n"
        "Homes come from residential buildings (population from footprint × floors ÷ 36.5 m² per person, the 7th census "
        "figure); where buildings are missing, residential land gets a grid of estimated homes. Homes in walled compounds "
        "leave through their gates. `coverage` gives, for each category, the share of homes, people, "
        "elderly (walking more slowly) and children within its own target, in the unit of the target's source: "
        "metres along the streets for the service radii of GB 50180-2018 (kindergarten 300 m, primary school 500 m...), "
        "minutes for the 2021 convenience-circle guide (pharmacy 8 min...); and within 5, 10 and 15 minutes."
    ),
    new_code_cell(
        "result = audit.audit(region)\n"
        'print(f"{len(result.homes):,} homes, {result.homes.population.sum():,.0f} people")\n'
        "cov = result.coverage\n"
        'at_target = cov[(cov.threshold == "target") & (cov.category != "complete_life_circle")]\n'
        'at_target = at_target[["name_zh", "name_en", "target_m", "target_minutes", "population_share", "elderly_share", "children_share"]]\n'
        "at_target.style.format({c: '{:.0%}' for c in ['population_share', 'elderly_share', 'children_share']})"
    ),
    new_markdown_cell(
        "The headline: the share of homes, people and elderly whose **whole** basic life circle of a level is "
        "complete (every basic category of the level, and of the levels below it, within its target)."
    ),
    new_code_cell(
        'cov[cov.category == "complete_life_circle"][["level", "homes_share", "population_share", "elderly_share"]]'
    ),
    new_markdown_cell("A chart of the first table: the share of people within each category's own target."),
    new_code_cell(
        "import matplotlib.pyplot as plt\n"
        "plt.rcParams['font.sans-serif'] = ['Noto Sans CJK SC', 'Noto Sans CJK JP', 'DejaVu Sans']\n"
        "ax = at_target.set_index('name_en')['population_share'].sort_values().plot.barh(figsize=(7, 5), color='#2c7bb6')\n"
        "ax.set_xlabel('share of people within the target'); ax.set_xlim(0, 1); plt.tight_layout()"
    ),
    new_markdown_cell(
        "## 3. Where are the gaps?\n\n"
        "Categories with no facility mapped at all are a finding of the audit, not an error: OpenStreetMap in China is rich "
        "in roads and poor in points of interest, so check these against local records (and add facilities with "
        "`planner audit --facilities FILE`)."
    ),
    new_code_cell(
        "summary = result.summary()\n"
        'print("no facility mapped:", ", ".join(summary["categories_without_facilities"]) or "none")\n'
        'worst = at_target.sort_values("population_share").head(5)\n'
        "worst"
    ),
    new_markdown_cell(
        "The audit map: one layer per category (switch them in the layer control), homes coloured by time."
    ),
    new_code_cell(
        "from planner.maps import map_audit\n"
        "from planner.audit import roads_gdf\n"
        "m = map_audit(result.homes.to_crs(4326), result.facilities.to_crs(4326).assign(geometry=lambda d: d.representative_point()),\n"
        "              result.isochrones.to_crs(4326), [dict(key=c.key, name_zh=c.name_zh, name_en=c.name_en, minutes=c.minutes) for c in result.categories],\n"
        "              roads=roads_gdf(result.network).to_crs(4326), title='南京新街口 Nanjing Xinjiekou')\n"
        "show(m)"
    ),
    new_markdown_cell(
        "## 4. Propose sites for new facilities\n\n"
        "Elderly day care is the plan's first priority group. `site` builds the homes × candidate-sites travel-time matrix "
        "on the same network (existing facilities stay open), weights each home by its people plus extra weight for the "
        "elderly, children and disabled, and solves a **maximal covering** model: up to 4 new sites, as many people as "
        "possible within 5 minutes. By default it sites by the standards: only land and buildings big enough for the "
        "category, each new site taking at least its minimum catchment and keeping the minimum spacing, so fewer than 4 "
        "may qualify (`standards=False` runs the pure model on candidate points). Every answer carries a proven bound, "
        "so the gap says how far from optimal it can be."
    ),
    new_code_cell(
        "from planner.siting import site\n"
        'plan = site(region, "elderly_care", model="mclp", new=4, minutes=5)\n'
        "s = plan.summary()\n"
        "print(f\"objective {s['objective']:,.0f}, bound {s['upper_bound']:,.0f}, gap {s['gap']:.2%}, solver {s['solver']}\")\n"
        'plan.proposed[["rank", "candidate_id", "uses", "capacity", "people_assigned", "population_newly_covered"]]'
    ),
    new_code_cell(
        'plan.before_after[["minutes", "population_share_before", "population_share_after", "elderly_share_before", "elderly_share_after"]]'
    ),
    new_markdown_cell(
        "## 5. Review a new estate's plan\n\n"
        "A reviewer checks a planned estate against the rule packs. The example plan (`sample_regions/plan_fail.geojson`) "
        "falls short on several rules; each row names the clause, the value, the threshold and the shortfall. "
        "From the command line: `planner review --plan FILE --out DIR` (exit code 1 when any rule fails)."
    ),
    new_code_cell(
        "from pathlib import Path\n"
        "from planner.review import review\n"
        "plan_file = next(p for p in [Path('sample_regions/plan_fail.geojson'), Path('../sample_regions/plan_fail.geojson')] if p.exists())\n"
        "rv = review(plan_file)\n"
        "print(rv.counts)\n"
        "table = pd.DataFrame(rv.to_records())\n"
        'table[table.status == "fail"][["rule_id", "title_zh", "value", "threshold", "unit", "shortfall", "clause"]]'
    ),
    new_markdown_cell(
        "## Next steps\n\n"
        "* Run the same on your own district: `planner audit --osm district.osm.pbf --out out/`.\n"
        "* Replace estimated homes with your compound list (`--homes compounds.gpkg` with `households`).\n"
        "* Add facilities OpenStreetMap lacks (`--facilities extra.csv` with `category`, `lon`, `lat`)."
    ),
]


VILLAGES = [
    new_markdown_cell(
        "# 乡村生活圈探索 · Administrative villages, their hamlets, and the plan's indicator\n\n"
        "The 2021–2025 urban–rural community service plan asks that **80 % of administrative villages** (行政村, "
        "each the unit of a 村民委员会) have a comprehensive service facility (up from 65.7 % in 2020). This notebook "
        "follows a county analyst through a rural town in Zhejiang (villages of Zhouwangmiao, Haining — a real "
        "OpenStreetMap extract bundled with `planner`):\n\n"
        "1. is the extract rural? (it decides how homes become people);\n"
        "2. the hamlets (自然村, natural villages) where people live;\n"
        "3. the administrative villages — here from their committees, each with the territory nearest to it along "
        "the walk network — and the hamlets grouped under them;\n"
        "4. the plan's indicator, and beside it the hamlets and residents within a short walk of a facility;\n"
        "5. the stations: the fewest that reach 80 %, each where it serves most of its village.\n\n"
        "The village-level walk (10 minutes) follows TD/T 1062-2021; it and the rural population profile are marked "
        "*to confirm* in `planner/data/rural_categories.toml` and `planner/settings.py`."
    ),
    new_code_cell(
        "import pandas as pd\nfrom planner import load_region, settings, villages\nsettings.progress = False\n\n"
        + SHOW_MAP
    ),
    new_markdown_cell("## 1. Rural or urban?"),
    new_code_cell(
        "from planner.settlement import judge_settlement\n\n"
        'region = load_region("zhejiang_haining_zhouwangmiao")\n'
        "verdict = judge_settlement(region)\n"
        "print(verdict.notice)\n"
        "verdict.evidence"
    ),
    new_markdown_cell(
        "Village committees outnumber residents' committees: the extract is rural, so homes use the rural profile "
        "(2-storey farmhouses, 46.8 m² of floor per person, 2.8 persons per household, 23 residents per hectare of "
        "village land where farmhouses are not mapped). `planner audit` uses the same profile, so both commands "
        "count the same people. An urban extract (compounds, apartment blocks, residents' committees) is named as "
        "such, and its compounds are never counted as villages."
    ),
    new_markdown_cell("## 2. The hamlets"),
    new_code_cell(
        "found = villages.find_villages(region)\n"
        'print(f"{len(found)} hamlets, {found.population.sum():,.0f} people:", found.source.value_counts().to_dict())\n'
        'found[["village_id", "name", "source", "homes", "homes_estimated", "population"]].head(10)'
    ),
    new_markdown_cell(
        "OSM rarely maps `place=village` in rural China: the hamlets here are named residential areas (自然村) and one "
        "cluster of farmhouses. With a population raster (`raster=`, `--raster`) their populations come from it."
    ),
    new_markdown_cell("## 3. Administrative villages and their hamlets"),
    new_code_cell(
        "result = villages.audit_villages(region, villages=found)\n"
        'result.admin[["name", "source", "committee", "hamlets", "population", "has_facility", "hamlets_within_walk"]]'
    ),
    new_markdown_cell(
        "No village boundary is mapped, so each committee's territory is the part of the walk network nearest to it "
        "(a network Voronoi: one multi-source Dijkstra). A county office with the official boundaries gives them "
        "with `boundaries=` (`--villages FILE`). Every hamlet falls under one of the two administrative villages:"
    ),
    new_code_cell('result.villages.groupby("admin_village")["name"].apply(lambda s: "、".join(s.dropna()))'),
    new_code_cell(
        "import matplotlib.pyplot as plt\n"
        "# Chinese names need a CJK font (Debian: fonts-noto-cjk); matplotlib falls back along the list.\n"
        'plt.rcParams["font.sans-serif"] = ["Noto Sans CJK SC", "Noto Serif CJK SC", "WenQuanYi Zen Hei", "DejaVu Sans"]\n'
        'ax = result.admin.plot(column="name", alpha=0.25, legend=True, figsize=(9, 5))\n'
        'result.villages.plot(ax=ax, color="#555555")\n'
        "ax.set_axis_off()"
    ),
    new_markdown_cell("## 4. The plan's indicator, and the walk"),
    new_code_cell(
        'result.indicators[["indicator", "unit", "name_zh", "villages", "villages_within_target", "share_within_target", "target_share"]].head(3)'
    ),
    new_markdown_cell(
        "Both administrative villages have their committee's office, which the rural categories file counts as the "
        "comprehensive service facility: the plan's indicator is 2 of 2 = 100 %, and no station is missing. The "
        "second measure is harder: only a quarter of the hamlets lie within a 10-minute walk of one."
    ),
    new_markdown_cell(
        "## 5. Stations\n\n"
        "A county may count only dedicated centres (党群服务中心, 综合服务站), not a bare committee office. That is data, "
        "not code: a categories file that redefines the facility. Here neither village has one, so the indicator is "
        "0 of 2 and two stations are needed — one per administrative village, each at the hamlet whose 10-minute "
        "walk reaches most of that village's residents (hamlets with no population are not demand)."
    ),
    new_code_cell(
        "from pathlib import Path\nimport tempfile\n\n"
        'strict = Path(tempfile.mkdtemp()) / "centres_only.toml"\n'
        "strict.write_text(\n"
        '    \'[[category]]\\nkey = "village_service_station"\\nname_zh = "党群服务中心"\\nname_en = "Party-masses service centre"\\n\'\n'
        '    \'minutes = 10\\nlevel = "village"\\nmode = "walk"\\nsource = "a county counting dedicated centres only"\\n\'\n'
        '    \'match = [{ name = "~(党群服务中心|综合服务站)" }]\\n\', encoding="utf-8")\n'
        "county = villages.audit_villages(region, villages=found, categories_file=strict)\n"
        'print(f"indicator: {county.share:.0%} of {len(county.admin)} administrative villages")\n'
        "plan = villages.propose_stations(county)\n"
        'plan.sites.drop(columns="geometry")'
    ),
    new_markdown_cell(
        "The map: hamlets coloured by the walk to a facility, the facilities, and the proposed stations."
    ),
    new_code_cell("show(county.map(plan))"),
    new_markdown_cell(
        "## Next steps\n\n"
        "* The same from the command line: `planner villages --osm town.osm.pbf --out out/ [--villages boundaries.gpkg] "
        "[--raster worldpop.tif]`.\n"
        "* Many towns at once: `planner batch --regions towns.csv --task villages --out out/`."
    ),
]


def write(name: str, cells: list) -> Path:
    nb = new_notebook(
        cells=cells,
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
    )
    path = ROOT / "notebooks" / name
    nbformat.write(nb, path)
    return path


if __name__ == "__main__":
    print(write("01_village_exploration.ipynb", VILLAGES))
    print(write("02_urban_15min.ipynb", URBAN))
