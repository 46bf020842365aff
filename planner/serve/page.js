(function () {
  'use strict';
  var token = new URLSearchParams(location.search).get('token');
  var S = null, times = null, tool = 'view', picked = null, pathStart = null, popTarget = null;
  var map = L.map('map', {preferCanvas: true, zoomControl: true});
  var renderer = L.canvas({padding: 0.5});
  var roadLayer = L.layerGroup().addTo(map), compoundLayer = L.layerGroup().addTo(map);
  var isoLayer = L.layerGroup().addTo(map);
  var homeLayer = L.layerGroup().addTo(map), facilityLayer = L.layerGroup().addTo(map);
  var homeMarkers = [];
  var TILES = __TILES__;
  if (TILES) { L.tileLayer(TILES, {maxZoom: 19}).addTo(map); }

  function $(id) { return document.getElementById(id); }
  function el(tag, text) { var e = document.createElement(tag); if (text !== undefined && text !== null) e.textContent = String(text); return e; }
  function pct(v) { return v === null || v === undefined ? '–' : (100 * v).toFixed(1) + '%'; }
  function num(v) { return v === null || v === undefined ? '–' : Math.round(v).toLocaleString(); }
  function status(text, isError) { var s = $('status'); s.textContent = text || ''; s.className = isError ? 'error' : ''; }

  function api(path, body) {
    var opts = {headers: {}};
    if (token) opts.headers['X-Planner-Token'] = token;
    if (body !== undefined) { opts.method = 'POST'; opts.headers['Content-Type'] = 'application/json'; opts.body = JSON.stringify(body); }
    return fetch(path, opts).then(function (r) {
      return r.json().then(function (data) {
        if (!r.ok) { throw new Error(data && data.error ? data.error : ('HTTP ' + r.status)); }
        return data;
      });
    });
  }
  function fail(err) { status('错误 error: ' + err.message, true); }
  function category() { return $('category').value; }
  function catInfo(key) { for (var i = 0; i < S.categories.length; i++) if (S.categories[i].key === key) return S.categories[i]; return null; }
  function label(c) { return c.name_zh + ' ' + c.name_en; }

  function colour(t, reach) {
    var legend = S.legend;
    // Beyond the sweep is past the largest threshold, not "no path": only unreachable is grey.
    if (reach === 'beyond') return legend[S.minutes.length].colour;
    if (t === null || t === undefined) return legend[legend.length - 1].colour;
    var band = 0;
    S.minutes.forEach(function (m) { if (m * 60 < t) band++; });
    return legend[band].colour;
  }

  function drawStatic() {
    roadLayer.clearLayers(); compoundLayer.clearLayers(); homeLayer.clearLayers(); homeMarkers = [];
    var r = S.roads, lines = [];
    for (var i = 0; i + 3 < r.length; i += 4) lines.push([[r[i + 1], r[i]], [r[i + 3], r[i + 2]]]);
    if (lines.length) L.polyline(lines, {color: '#9a9a9a', weight: 1, interactive: false, renderer: renderer}).addTo(roadLayer);
    S.compounds.forEach(function (c) {
      c.outline.forEach(function (ring) {
        L.polygon(ring.map(function (p) { return [p[1], p[0]]; }), {color: '#7a5c2e', weight: 1.5, fill: false, dashArray: '4 3', interactive: false, renderer: renderer}).addTo(compoundLayer);
      });
    });
    var h = S.homes;
    for (var k = 0; k < h.lon.length; k++) {
      var m = L.circleMarker([h.lat[k], h.lon[k]], {radius: 4, weight: 0.5, color: '#333', fillOpacity: 0.85, renderer: renderer});
      m.homeIndex = k;
      m.on('click', homeClicked);
      m.addTo(homeLayer);
      homeMarkers.push(m);
    }
  }

  function drawHomes() {
    if (!times) return;
    homeMarkers.forEach(function (m, k) { m.setStyle({fillColor: colour(times.time_s[k], times.reach[k])}); });
  }

  function drawFacilities() {
    facilityLayer.clearLayers();
    var key = category();
    S.facilities.forEach(function (f) {
      if (f.category !== key) return;
      var isPicked = picked && picked.facility_id === f.facility_id;
      var m = L.circleMarker([f.lat, f.lon], {radius: 7, weight: 2, color: isPicked ? '#d00' : '#000', fillColor: '#fff', fillOpacity: 1, renderer: renderer});
      var tip = el('span', (f.name || '') + ' [' + f.facility_id + ']');
      m.bindTooltip(tip);
      m.on('click', function (e) { L.DomEvent.stopPropagation(e); facilityClicked(f); });
      m.addTo(facilityLayer);
    });
  }

  function row(tbody, cells) { var tr = el('tr'); cells.forEach(function (c) { tr.appendChild(el('td', c)); }); tbody.appendChild(tr); return tr; }

  function drawTables() {
    var key = category(), tb = $('coverage').tBodies[0];
    tb.textContent = '';
    $('coverage-category').textContent = label(catInfo(key));
    S.coverage.forEach(function (r) {
      if (r.category !== key) return;
      var name = r.threshold === 'target' ? '目标 target ' + catInfo(key).target : '≤ ' + r.minutes + ' 分钟 min';
      row(tb, [name, pct(r.homes_share), pct(r.population_share), pct(r.elderly_share), pct(r.children_share), pct(r.disabled_share)]);
    });
    var cb = $('complete').tBodies[0]; cb.textContent = '';
    S.coverage.forEach(function (r) {
      if (r.category !== 'complete_life_circle') return;
      row(cb, [r.level, pct(r.population_share), pct(r.elderly_share), pct(r.children_share)]);
    });
    var ab = $('all').tBodies[0]; ab.textContent = '';
    S.coverage.forEach(function (r) {
      if (r.threshold !== 'target' || r.category === 'complete_life_circle') return;
      var c = catInfo(r.category);
      row(ab, [label(c), c.target, pct(r.population_share), pct(r.elderly_share)]);
    });
    var ol = $('edits'); ol.textContent = '';
    S.edits.forEach(function (e) {
      var what = e.kind + (e.category ? ' ' + e.category : '') + (e.facility_id ? ' ' + e.facility_id : '') +
        (e.nodes ? ' ' + e.nodes.join('–') : '') + (e.population !== undefined ? ' = ' + e.population : '');
      ol.appendChild(el('li', what));
    });
    $('title').textContent = S.region + (S.scenario ? ' — ' + S.scenario : '') + ' — 生活圈 life circles';
  }

  function fillScenarios(names) {
    S.scenarios = names;
    [['scenario-list', false], ['compare-a', true], ['compare-b', true]].forEach(function (spec) {
      var sel = $(spec[0]), old = sel.value; sel.textContent = '';
      var opts = spec[1] ? ['(current)'].concat(names) : names;
      opts.forEach(function (n) { var o = el('option', n); o.value = n; sel.appendChild(o); });
      if (opts.indexOf(old) >= 0) sel.value = old;
    });
  }

  function loadIsochrone() {
    isoLayer.clearLayers();
    if (!$('show-isochrone').checked) return Promise.resolve();
    return api('/api/isochrone?category=' + encodeURIComponent(category())).then(function (g) {
      isoLayer.clearLayers();
      L.geoJSON(g, {style: {color: '#264b96', weight: 1, fillOpacity: 0.12}, interactive: false}).addTo(isoLayer);
    });
  }

  function loadTimes() {
    loadIsochrone().catch(fail);
    return api('/api/times?category=' + encodeURIComponent(category())).then(function (t) { times = t; drawHomes(); });
  }

  function refresh(data) {
    ['facilities', 'edits', 'coverage', 'totals'].forEach(function (k) { if (data[k] !== undefined) S[k] = data[k]; });
    if (data.facilities_of) {  // an edit sends the facilities of the categories it changed
      var keep = S.facilities.filter(function (f) { return !Object.prototype.hasOwnProperty.call(data.facilities_of, f.category); });
      Object.keys(data.facilities_of).forEach(function (k) { keep = keep.concat(data.facilities_of[k]); });
      S.facilities = keep;
    }
    drawFacilities(); drawTables();
    return loadTimes();
  }

  function edit(body, message) {
    status('计算中 computing…');
    return api('/api/edits', body).then(function (data) { return refresh(data).then(function () { status(message || '已更新 updated'); }); }).catch(fail);
  }

  function facilityClicked(f) {
    if (tool === 'delete') { edit({kind: 'delete_facility', facility_id: f.facility_id, category: f.category}, '已删除 deleted'); }
    else if (tool === 'move') { picked = f; drawFacilities(); status('点击新位置 click the new place'); }
    else { status((f.name || '') + ' [' + f.facility_id + ']'); }
  }

  function homeClicked(e) {
    if (tool !== 'population') return;
    L.DomEvent.stopPropagation(e);
    var k = e.target.homeIndex;
    popTarget = {home_id: S.homes.home_id[k], compound_id: S.homes.compound_id[k]};
    $('population-target').textContent = popTarget.home_id + (popTarget.compound_id ? ' / ' + popTarget.compound_id : '');
    $('population-value').value = S.homes.population[k];
  }

  map.on('click', function (e) {
    var lon = e.latlng.lng, lat = e.latlng.lat;
    if (tool === 'add') edit({kind: 'add_facility', category: category(), lon: lon, lat: lat}, '已新增 added');
    else if (tool === 'move' && picked) { var f = picked; picked = null; edit({kind: 'move_facility', facility_id: f.facility_id, category: f.category, lon: lon, lat: lat}, '已移动 moved'); }
    else if (tool === 'close') edit({kind: 'close_path', lon: lon, lat: lat}, '已封路 closed');
    else if (tool === 'gate') edit({kind: 'add_gate', lon: lon, lat: lat}, '已开门 gate added');
    else if (tool === 'path') {
      if (!pathStart) { pathStart = [lon, lat]; status('点击终点 click where the path ends'); }
      else { var p = pathStart; pathStart = null; edit({kind: 'add_path', coordinates: [p, [lon, lat]]}, '已新增路径 path added'); }
    }
  });

  Array.prototype.forEach.call(document.querySelectorAll('#tools button[data-tool]'), function (b) {
    b.addEventListener('click', function () {
      tool = b.getAttribute('data-tool'); picked = null; pathStart = null;
      Array.prototype.forEach.call(document.querySelectorAll('#tools button[data-tool]'), function (o) { o.className = o === b ? 'on' : ''; });
      $('population-form').hidden = tool !== 'population';
      status('');
    });
  });
  $('undo').addEventListener('click', function () { api('/api/undo', {}).then(function (d) { return refresh(d).then(function () { status('已撤销 undone'); }); }).catch(fail); });
  $('population-set').addEventListener('click', function () {
    if (!popTarget) { status('先点击住宅 click a home first', true); return; }
    var scope = document.querySelector('input[name=population-scope]:checked').value;
    var body = {kind: 'set_population', population: Number($('population-value').value)};
    if (scope === 'compound') { if (!popTarget.compound_id) { status('此住宅不在小区内 this home is in no compound', true); return; } body.compound_id = popTarget.compound_id; }
    else body.home_id = popTarget.home_id;
    edit(body, '人口已更新 population set');
  });
  $('show-isochrone').addEventListener('change', function () { loadIsochrone().catch(fail); });
  $('category').addEventListener('change', function () {
    var c = catInfo(category()); $('target').textContent = '目标 target ' + c.target;
    drawFacilities(); drawTables(); loadTimes().catch(fail);
  });
  $('save').addEventListener('click', function () {
    api('/api/scenarios/save', {name: $('scenario-name').value}).then(function (d) { fillScenarios(d.scenarios); S.scenario = d.saved; drawTables(); status('已保存 saved ' + d.path); }).catch(fail);
  });
  $('load').addEventListener('click', function () {
    status('载入中 loading…');
    api('/api/scenarios/load', {name: $('scenario-list').value}).then(function (d) { S.scenario = d.loaded; $('scenario-name').value = d.loaded; return refresh(d).then(function () { status('已载入 loaded ' + d.loaded); }); }).catch(fail);
  });
  $('export').addEventListener('click', function () {
    status('导出中 exporting…');
    api('/api/scenarios/export', {name: $('scenario-name').value || '(current)'}).then(function (d) { status('已导出 exported ' + d.path); }).catch(fail);
  });
  $('compare').addEventListener('click', function () {
    status('比较中 comparing…');
    api('/api/scenarios/compare', {a: $('compare-a').value, b: $('compare-b').value}).then(function (d) {
      var tb = $('compare-table').tBodies[0]; tb.textContent = '';
      d.rows.forEach(function (r) { row(tb, [r.name_zh + ' ' + r.name_en, num(r.people_newly_within), num(r.elderly_newly_within), num(r.people_no_longer_within)]); });
      status('已比较 compared ' + d.a + ' → ' + d.b);
    }).catch(fail);
  });
  $('propose').addEventListener('click', function () {
    status('选址中 siting…');
    api('/api/propose', {category: category(), new: Number($('propose-new').value),
      standards: $('propose-standards').checked, model: $('propose-model').value}).then(function (d) {
      var tb = $('proposals').tBodies[0]; tb.textContent = '';
      $('propose-why').textContent = d.why ? '无建议 nothing proposed: ' + d.why : '';
      d.proposals.forEach(function (p) {
        var tr = row(tb, [p.edit.name, '+' + num(p.population_newly_covered) + ' 人 people']);
        var td = el('td'), b = el('button', '采纳 Accept');
        b.addEventListener('click', function () { b.disabled = true; edit(p.edit, '已采纳 accepted'); });
        td.appendChild(b); tr.appendChild(td);
      });
      status('建议 ' + d.proposals.length + ' proposals');
    }).catch(fail);
  });

  api('/api/state').then(function (data) {
    S = data;
    var sel = $('category');
    S.categories.forEach(function (c) { var o = el('option', label(c)); o.value = c.key; sel.appendChild(o); });
    $('target').textContent = '目标 target ' + S.categories[0].target;
    var lg = $('legend');
    S.legend.forEach(function (item) { var sw = el('span'); sw.style.background = item.colour; lg.appendChild(sw); lg.appendChild(document.createTextNode(item.label)); });
    fillScenarios(S.scenarios);
    map.fitBounds(S.bounds);
    drawStatic(); drawFacilities(); drawTables();
    return loadTimes();
  }).then(function () { document.body.setAttribute('data-ready', '1'); status('就绪 ready'); }).catch(fail);
})();
