"""The one page of ``planner serve``: a Leaflet map and the tables, offline.

Leaflet is inlined from the xstatic-leaflet package (as in every planner map), so the page
needs no internet. Its script and style are ``page.js`` and ``page.css`` beside this
module. The page holds no data: it fetches it from the API, and every string from data
(names, ids, category labels) reaches the document through ``textContent``, never as HTML.
"""

from __future__ import annotations

from pathlib import Path

from planner import settings
from planner.maps._render import escape_html, leaflet_tags

_HERE = Path(__file__).parent


_BODY = """
<div id="wrap">
<div id="map"></div>
<div id="panel">
  <h1 id="title"></h1>
  <div>类别 Category <select id="category"></select> <span id="target"></span></div>
  <div class="legend" id="legend"></div>
  <div><label><input type="checkbox" id="show-isochrone"> 显示目标等时圈 Show the target circle</label></div>
  <h2>编辑 Edit</h2>
  <div class="tools" id="tools">
    <button data-tool="view" class="on">查看 View</button>
    <button data-tool="add">新增设施 Add facility</button>
    <button data-tool="move">移动 Move</button>
    <button data-tool="delete">删除 Delete</button>
    <button data-tool="path">新路 Add path</button>
    <button data-tool="close">封路 Close path</button>
    <button data-tool="gate">开门 Add gate</button>
    <button data-tool="population">人口 Population</button>
    <button id="undo">撤销 Undo</button>
  </div>
  <div id="population-form" hidden>
    <span id="population-target"></span>
    <label><input type="radio" name="population-scope" value="home" checked> 住宅 home</label>
    <label><input type="radio" name="population-scope" value="compound"> 小区 compound</label>
    <input type="number" id="population-value" min="0" step="1">
    <button id="population-set">设置 Set</button>
  </div>
  <div id="status"></div>
  <h2>覆盖 Coverage (<span id="coverage-category"></span>)</h2>
  <table id="coverage"><thead><tr><th>阈值 Threshold</th><th>住宅 Homes</th><th>人口 People</th>
    <th>老人 Elderly</th><th>儿童 Children</th><th>残障 Disabled</th></tr></thead><tbody></tbody></table>
  <h2>完整基本生活圈 Complete basic life circle</h2>
  <table id="complete"><thead><tr><th>层级 Level</th><th>人口 People</th><th>老人 Elderly</th>
    <th>儿童 Children</th></tr></thead><tbody></tbody></table>
  <h2>各类别 By category (目标 at target)</h2>
  <table id="all"><thead><tr><th>类别 Category</th><th>目标 Target</th><th>人口 People</th>
    <th>老人 Elderly</th></tr></thead><tbody></tbody></table>
  <h2>方案 Scenarios</h2>
  <div>名称 Name <input id="scenario-name" size="16" placeholder="clinic-north">
    <button id="save">保存 Save</button> <button id="export">导出 Export</button></div>
  <div>已存 Saved <select id="scenario-list"></select> <button id="load">载入 Load</button></div>
  <div>比较 Compare <select id="compare-a"></select> → <select id="compare-b"></select>
    <button id="compare">比较 Compare</button></div>
  <table id="compare-table"><thead><tr><th>类别 Category</th><th>新增人口 People newly within</th>
    <th>新增老人 Elderly newly within</th><th>减少人口 People no longer within</th></tr></thead>
    <tbody></tbody></table>
  <h2>建议选址 Propose sites</h2>
  <div>数量 New sites <input type="number" id="propose-new" value="1" min="1" max="20">
    <label><input type="checkbox" id="propose-standards" checked> 按标准 by the standards</label>
    <select id="propose-model"><option value="mclp">mclp 最大覆盖 most covered</option>
      <option value="pmedian">pmedian 总时间最少 least total time</option>
      <option value="pcenter">pcenter 最远最近 least worst time</option></select>
    <button id="propose">建议 Propose</button></div>
  <p id="propose-why"></p>
  <table id="proposals"><tbody></tbody></table>
  <h2>编辑记录 Edits</h2>
  <ol id="edits"></ol>
</div>
</div>
"""


def page_html(region: str) -> str:
    """The workbench page (its data comes from the API; ``region`` only names the tab)."""
    import json

    url = settings.map_tiles
    if url == "OpenStreetMap":
        url = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    tiles = json.dumps(url).replace("</", "<\\/")
    css = (_HERE / "page.css").read_text(encoding="utf-8")
    js = (_HERE / "page.js").read_text(encoding="utf-8")
    return (
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape_html(region)} — planner serve</title>"
        + leaflet_tags()
        + f"<style>{css}</style></head><body>{_BODY}<script>{js.replace('__TILES__', tiles)}</script>"
        "</body></html>"
    )
