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
    new_code_cell("import pandas as pd\nfrom planner import audit, load_region, settings\nsettings.progress = False\n\n" + SHOW_MAP),
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
        "leave through their gates. `coverage` gives, for each category and threshold, the share of homes, people, "
        "elderly (walking more slowly) and children within reach."
    ),
    new_code_cell(
        "result = audit.audit(region)\n"
        'print(f"{len(result.homes):,} homes, {result.homes.population.sum():,.0f} people")\n'
        "cov = result.coverage\n"
        'at_target = cov[cov.minutes == cov.target_minutes][["name_zh", "name_en", "minutes", "population_share", "elderly_share", "children_share"]]\n'
        "at_target.style.format({c: '{:.0%}' for c in ['population_share', 'elderly_share', 'children_share']})"
    ),
    new_markdown_cell("A chart of the same table: the share of people within each category's own target circle."),
    new_code_cell(
        "import matplotlib.pyplot as plt\n"
        "plt.rcParams['font.sans-serif'] = ['Noto Sans CJK SC', 'Noto Sans CJK JP', 'DejaVu Sans']\n"
        "ax = at_target.set_index('name_en')['population_share'].sort_values().plot.barh(figsize=(7, 5), color='#2c7bb6')\n"
        "ax.set_xlabel('share of people within the target circle'); ax.set_xlim(0, 1); plt.tight_layout()"
    ),
    new_markdown_cell(
        "## 3. Where are the gaps?\n\n"
        "Categories with no facility mapped at all are a finding of the audit, not an error: OpenStreetMap in China is rich "
        "in roads and poor in points of interest, so check these against local records (and add facilities with "
        "`planner audit --facilities FILE`)."
    ),
    new_code_cell(
        'summary = result.summary()\n'
        'print("no facility mapped:", ", ".join(summary["categories_without_facilities"]) or "none")\n'
        'worst = at_target.sort_values("population_share").head(5)\n'
        'worst'
    ),
    new_markdown_cell("The audit map: one layer per category (switch them in the layer control), homes coloured by time."),
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
        "elderly, children and disabled, and solves a **maximal covering** model: 4 new sites, as many people as possible "
        "within 5 minutes. Every answer carries a proven bound, so the gap says how far from optimal it can be."
    ),
    new_code_cell(
        "from planner.siting import site\n"
        'plan = site(region, "elderly_care", model="mclp", new=4, minutes=5)\n'
        "s = plan.summary()\n"
        'print(f"objective {s[\'objective\']:,.0f}, bound {s[\'upper_bound\']:,.0f}, gap {s[\'gap\']:.2%}, solver {s[\'solver\']}")\n'
        'plan.proposed[["rank", "candidate_id", "source", "population_newly_covered", "homes_newly_covered"]]'
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
        "# 乡村生活圈探索 · Exploring villages\n\n"
        "The 2021–2025 urban–rural community service plan asks that **80 % of villages** have a comprehensive service "
        "facility (up from 65.7 % in 2020). This notebook explores a rural town in Zhejiang (villages of Zhouwangmiao, "
        "Haining — a real OpenStreetMap extract bundled with `planner`):\n\n"
        "1. find the villages — OSM rarely maps `place=village` in rural China, so named residential areas, village "
        "committees and clusters of farmhouses are used;\n"
        "2. audit what each village has inside it and within a short trip;\n"
        "3. compute the plan's coverage indicator;\n"
        "4. propose where new village service stations would reach 80 %.\n\n"
        "The village and township thresholds follow TD/T 1062-2021; their values are marked *to confirm* in "
        "`planner/data/rural_categories.toml` until checked against the guide's text."
    ),
    new_code_cell("import pandas as pd\nfrom planner import load_region, settings, villages\nsettings.progress = False\n\n" + SHOW_MAP),
    new_markdown_cell("## 1. Load the town and find its villages"),
    new_code_cell(
        'region = load_region("zhejiang_haining_zhouwangmiao")\n'
        "found = villages.find_villages(region)\n"
        'print(f"{len(found)} villages:", found.source.value_counts().to_dict())\n'
        'found[["village_id", "name", "source", "admin_village", "homes", "population"]].head(12)'
    ),
    new_markdown_cell(
        "Each row is a natural village (自然村). Where a village committee (村委) is mapped, its administrative village "
        "(行政村) is attached as `admin_village`. Population comes from mapped farmhouses, or from an estimate over "
        "residential land where houses are not mapped (give a population raster with `raster=` for better weights)."
    ),
    new_markdown_cell("## 2. What does each village have within reach?"),
    new_code_cell(
        "result = villages.audit_villages(region, villages=found)\n"
        "result.indicators.head(8)"
    ),
    new_markdown_cell(
        "The first row is the plan's indicator: the share of villages with a comprehensive service station inside "
        "them or within the village-level trip. Categories with no facility mapped are listed in the notes: "
        "OpenStreetMap is sparse in the countryside, so add facilities you know with `extra_facilities=`."
    ),
    new_code_cell(
        "s = result.summary()\n"
        'print(f"covered: {result.share:.1%} of villages (target 80%)")\n'
        'for note in s.get("notes", []):\n'
        '    print("note:", note)'
    ),
    new_markdown_cell("## 3. Where would new stations reach 80 %?\n\nSet covering: the fewest new stations, at village centres, so that at least 80 % of villages are covered."),
    new_code_cell(
        "plan = villages.propose_stations(result, target_share=0.8)\n"
        'print(f"{len(plan.sites)} new stations: {plan.covered_before.mean():.1%} → {plan.covered_after.mean():.1%} ({plan.solver}, {plan.status})")\n'
        "plan.sites.drop(columns='geometry').head(10)"
    ),
    new_markdown_cell("The map: villages coloured by coverage (green: station inside; light green: within reach; red: not covered), stations and the proposed sites."),
    new_code_cell("show(result.map(plan))"),
    new_markdown_cell(
        "## Next steps\n\n"
        "* The same from the command line: `planner villages --osm town.osm.pbf --out out/ [--raster worldpop.tif]`.\n"
        "* Many towns at once: `planner batch --regions towns.csv --task villages --out out/`."
    ),
]


def write(name: str, cells: list) -> Path:
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    })
    path = ROOT / "notebooks" / name
    nbformat.write(nb, path)
    return path


if __name__ == "__main__":
    print(write("01_village_exploration.ipynb", VILLAGES))
    print(write("02_urban_15min.ipynb", URBAN))
