"""Printable maps: ``map.png`` and ``map.pdf`` beside ``map.html`` (matplotlib, geopandas).

A page holds a title, the layers drawn in a metric CRS, a legend in Chinese and English, a
scale bar, a north arrow, labels (village names, site ranks) and the data's attribution, on
A4 or A3 landscape (``settings.map_paper``, ``--paper``). Base tiles are drawn only when an
XYZ URL is given (``settings.map_tiles``, ``--tiles``): e.g. Tianditu with the user's key or
an intranet tile server; none by default, so nothing is fetched.

Labels and legend entries come from data (OSM names, file columns): they are drawn as plain
text, never parsed as mathtext (a ``$`` in a name stays a ``$``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from planner import settings

__all__ = [
    "PAPER_INCHES",
    "PrintLayer",
    "cjk_font",
    "nice_length_m",
    "print_audit",
    "print_site",
    "print_villages",
    "write_printable",
]

#: Landscape page sizes (width, height) in inches.
PAPER_INCHES = {"a4": (11.69, 8.27), "a3": (16.54, 11.69)}
#: Resolution of map.png.
PNG_DPI = 150
#: Parts (points, lines, polygons) above which a layer is drawn as an image in map.pdf
#: rather than as vector paths.
PRINT_VECTOR_MAX_FEATURES = 5_000
#: Points drawn at their layer's marker size; a layer with more is drawn with markers whose
#: area shrinks in proportion (down to 1/50), so a city's points stay apart on paper.
PRINT_FULL_SIZE_POINTS = 2_000
#: Fonts tried for Chinese text, in order (matplotlib's font manager finds them by family).
_CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans CJK JP",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Microsoft YaHei",
    "SimHei",
    "PingFang SC",
    "Noto Serif CJK SC",
)
_ATTRIBUTION = "数据 Data © OpenStreetMap contributors (ODbL)"
_font_warned = False


@dataclass
class PrintLayer:
    """One layer of a printable map.

    ``colour`` is one colour or one per row; ``legend`` lists the (colour, label) entries
    the layer adds (one entry ``(colour, label)`` for a single colour).
    """

    gdf: gpd.GeoDataFrame
    kind: str  # "point", "line" or "area"
    colour: str | Sequence[str]
    legend: list[tuple[str, str]] = field(default_factory=list)
    size: float = 8.0
    marker: str = "o"
    edge: str = "none"
    alpha: float = 1.0
    width: float = 0.6
    # The page is fitted to the layers with fit: the homes, sites and villages studied, not the
    # roads and facilities loaded around them for their reach.
    fit: bool = True


def cjk_font() -> str | None:
    """The family of an installed CJK font, or None (then a one-time warning)."""
    global _font_warned
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    found = next((name for name in _CJK_FAMILIES if name in installed), None)
    if found is None:
        found = next((n for n in sorted(installed) if "CJK" in n or "Hei" in n), None)
    if found is None and not _font_warned:
        _font_warned = True
        warnings.warn(
            "no CJK font found for map.png/map.pdf: Chinese text shows as boxes; install one, "
            "e.g. fonts-noto-cjk (Debian/Ubuntu)",
            stacklevel=2,
        )
    return found


def write_printable(
    folder: str | Path,
    title: str,
    layers: Sequence[PrintLayer],
    labels: Sequence[tuple[float, float, str]] = (),
    subtitle: str = "",
    paper: str | None = None,
    tiles: str | None = None,
    labels_crs="EPSG:4326",
) -> list[Path]:
    """Draw the layers on one page; write ``map.png`` and ``map.pdf`` in ``folder``.

    Parameters
    ----------
    folder : path
        Where to write.
    title, subtitle : str
        Shown at the top (plain text).
    layers : sequence of PrintLayer
        In drawing order; their frames in any CRS (drawn in the first one's UTM zone).
    labels : sequence of (x, y, text)
        In ``labels_crs`` (default WGS84 lon/lat); drawn beside the point.
    paper : {"a4", "a3"}, optional
        Default ``settings.map_paper``.
    tiles : str, optional
        XYZ URL template of base tiles; default ``settings.map_tiles`` (None: no tiles).

    Returns
    -------
    list of Path
        ``map.png`` and ``map.pdf``; none when ``settings.map_printable`` is off.
    """
    if not settings.map_printable:
        return []
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    paper = (paper or settings.map_paper).lower()
    tiles = settings.map_tiles if tiles is None else tiles
    if tiles and not tiles.startswith(("http:", "https:", "//")):
        tiles = None  # a folium name such as "OpenStreetMap" is for map.html only
    layers = [lay for lay in layers if lay.gdf is not None and len(lay.gdf)]
    metric = _metric_crs(layers)
    font = cjk_font()
    with rc_context(
        {
            "font.family": [font, "DejaVu Sans"] if font else ["DejaVu Sans"],
            # Glyph outlines in the PDF (Type 3), with their Unicode text: the CJK fonts are
            # OpenType with CFF outlines, which a TrueType (Type 42) embedding misdeclares, and
            # subsetting their 20 MB collections took seconds per map.
            "pdf.fonttype": 3,
            "axes.unicode_minus": False,
        }
    ):
        fig = Figure(figsize=PAPER_INCHES[paper], layout=None)
        ax = fig.add_axes((0.03, 0.07, 0.64, 0.82))
        handles, bounds = _draw_layers(ax, layers, metric)
        if metric is not None and len(labels):
            _labels(ax, labels, labels_crs, metric)
        _frame(ax, np.array(bounds) if bounds else None)
        credit = _ATTRIBUTION
        if tiles:
            credit += "; " + _basemap(ax, metric, tiles)
        fig.text(0.03, 0.95, title, fontsize=15 if paper == "a4" else 20, weight="bold", parse_math=False)
        if subtitle:
            fig.text(0.03, 0.915, subtitle, fontsize=10 if paper == "a4" else 13, parse_math=False)
        if handles:
            _legend(fig, handles)
        if metric is not None:
            _scale_bar(ax)
            _north_arrow(ax)
        fig.text(0.03, 0.03, credit, fontsize=7, color="#555555", parse_math=False)
        folder = Path(folder)
        fig.savefig(folder / "map.png", dpi=PNG_DPI)
        fig.savefig(folder / "map.pdf")
    return [folder / "map.png", folder / "map.pdf"]


def _draw_layers(ax, layers: Sequence[PrintLayer], metric) -> tuple[list, list]:
    """Draw every layer in ``metric``; return the legend handles and the bounds to fit."""
    handles, bounds = [], []
    for lay in layers:
        gdf = lay.gdf
        if lay.kind == "point":  # the points drawn, not every outline, are reprojected
            gdf = gdf.set_geometry(gdf.geometry.representative_point())
        gdf = gdf.to_crs(metric) if metric is not None else gdf
        handles += _draw(ax, gdf, lay)
        if lay.fit:
            bounds.append(gdf.total_bounds)
    return handles, bounds


def _legend(fig, handles: list) -> None:
    """The legend right of the map, labels on at most two lines, shown as plain text."""
    for h in handles:
        h.set_label(_two_lines(h.get_label()))
    legend = fig.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(0.69, 0.89),
        frameon=False,
        title="图例 Legend",
        fontsize=9,
        title_fontsize=10,
        alignment="left",
        labelspacing=0.9,
    )
    for text in legend.get_texts():
        text.set_parse_math(False)


def _metric_crs(layers: Sequence[PrintLayer]):
    """The UTM zone of the first layer: metres true both ways, so the scale bar holds (Web
    Mercator's metres stretch with latitude)."""
    if not layers or layers[0].gdf.crs is None:
        return None
    from planner.sources import metric_crs_of

    return metric_crs_of(layers[0].gdf)


def _draw(ax, gdf: gpd.GeoDataFrame, lay: PrintLayer) -> list:
    """Plot one layer; return its legend handles."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, PathPatch

    colour = lay.colour if isinstance(lay.colour, str) else list(lay.colour)
    # A city's layer is an image inside the PDF: tens of thousands of vector paths cost the
    # PDF writer most of a minute and the file tens of MB, at no gain on paper.
    raster = int(shapely.get_num_geometries(gdf.geometry.to_numpy()).sum()) > PRINT_VECTOR_MAX_FEATURES
    if lay.kind == "area":
        gdf.plot(
            ax=ax, color=colour, alpha=lay.alpha, edgecolor=lay.edge, linewidth=lay.width, rasterized=raster
        )
    elif lay.kind == "line" and isinstance(colour, str):
        # One path of every line (a move to each line's start): a city's streets as one
        # artist, not a Path object per segment; added as an artist, as add_patch would walk
        # every segment for the data limits, which are the layer's bounds.
        ax.add_artist(
            PathPatch(
                _line_path(gdf.geometry.to_numpy()),
                fill=False,
                edgecolor=colour,
                alpha=lay.alpha,
                linewidth=lay.width,
                rasterized=raster,
            )
        )
        ax.update_datalim(gdf.total_bounds.reshape(2, 2))
    elif lay.kind == "line":
        gdf.plot(ax=ax, color=colour, alpha=lay.alpha, linewidth=lay.width, rasterized=raster)
    else:
        pts = gdf.geometry.representative_point()
        ax.scatter(
            pts.x,
            pts.y,
            # Thousands of markers at full size would bury each other and the layers below.
            s=lay.size * min(1.0, max(PRINT_FULL_SIZE_POINTS / max(len(pts), 1), 0.02)),
            c=colour,
            marker=lay.marker,
            alpha=lay.alpha,
            edgecolors=lay.edge,
            linewidths=lay.width,
            zorder=3,
            rasterized=raster,
        )
    handles = []
    for c, label in lay.legend:
        edge = lay.edge if lay.edge != "none" else c
        if lay.kind == "area":
            handles.append(Patch(facecolor=c, edgecolor=edge, alpha=max(lay.alpha, 0.5), label=label))
        elif lay.kind == "line":
            handles.append(Line2D([], [], color=c, linewidth=max(lay.width, 1.5), label=label))
        else:
            handles.append(
                Line2D(
                    [],
                    [],
                    color="none",
                    marker=lay.marker,
                    markerfacecolor=c,
                    markeredgecolor=edge,
                    markersize=max(4.0, math.sqrt(lay.size) * 1.2),
                    label=label,
                )
            )
    return handles


def _line_path(geoms: np.ndarray):
    """Every line and polygon ring of ``geoms`` as one matplotlib Path."""
    from matplotlib.path import Path as MplPath

    from .base import line_vertices

    xy, index = line_vertices(geoms)
    codes = np.full(len(xy), MplPath.LINETO, np.uint8)
    codes[np.r_[0, np.flatnonzero(np.diff(index)) + 1][: len(xy)]] = MplPath.MOVETO
    return MplPath(xy, codes)


def _labels(ax, labels, labels_crs, metric) -> None:
    xs, ys = [x for x, _, _ in labels], [y for _, y, _ in labels]
    pts = gpd.GeoSeries(gpd.points_from_xy(xs, ys), crs=labels_crs).to_crs(metric)
    # A light box rather than a stroked halo: stroked text becomes paths, and the PDF's
    # labels could no longer be searched or copied.
    box = {"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.75}
    for p, (_, _, text) in zip(pts, labels, strict=True):
        ax.annotate(
            str(text),
            (p.x, p.y),
            xytext=(4, 4),
            textcoords="offset points",
            fontsize=8,
            zorder=5,
            bbox=box,
            parse_math=False,
            annotation_clip=True,
        )


def _two_lines(label: str) -> str:
    """A long "中文 English" legend label on two lines: Chinese, then English."""
    if len(label) <= 28 or " " not in label:
        return label
    zh, en = label.split(" ", 1)
    return f"{zh}\n{en}"


def _frame(ax, bounds: np.ndarray | None) -> None:
    """Fit the axes to ``bounds`` (rows of minx, miny, maxx, maxy) with a margin, no ticks."""
    ax.set_aspect("equal", adjustable="box")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("")
    ax.set_ylabel("")
    for side in ax.spines.values():
        side.set_edgecolor("#888888")
    if bounds is not None and np.isfinite(bounds).all():
        x0, y0 = bounds[:, 0].min(), bounds[:, 1].min()
        x1, y1 = bounds[:, 2].max(), bounds[:, 3].max()
        pad = 0.06 * max(x1 - x0, y1 - y0, 200.0)
        x0, x1, y0, y1 = x0 - pad, x1 + pad, y0 - pad, y1 + pad
        # Widen the short side so one metre is as long both ways and the frame fills the page.
        box = ax.get_position()
        fw, fh = ax.figure.get_size_inches()
        aspect = (box.height * fh) / (box.width * fw)
        if (y1 - y0) / (x1 - x0) < aspect:
            grow = ((x1 - x0) * aspect - (y1 - y0)) / 2
            y0, y1 = y0 - grow, y1 + grow
        else:
            grow = ((y1 - y0) / aspect - (x1 - x0)) / 2
            x0, x1 = x0 - grow, x1 + grow
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)


def nice_length_m(span_m: float) -> float:
    """A round scale-bar length (1, 2 or 5 × 10^k m) near a fifth of ``span_m``."""
    target = max(span_m / 5.0, 1.0)
    power = 10.0 ** math.floor(math.log10(target))
    return max(m * power for m in (1, 2, 5) if m * power <= target)


def _scale_bar(ax) -> None:
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    x0, x1 = ax.get_xlim()
    length = nice_length_m(x1 - x0)
    label = f"{length / 1000:g} 公里 km" if length >= 1000 else f"{length:g} 米 m"
    bar = AnchoredSizeBar(
        ax.transData,
        length,
        label,
        loc="lower left",
        pad=0.6,
        borderpad=0.8,
        sep=4,
        frameon=True,
        size_vertical=(ax.get_ylim()[1] - ax.get_ylim()[0]) / 250,
    )
    bar.patch.set_alpha(0.8)
    ax.add_artist(bar)


def _north_arrow(ax) -> None:
    # Grid north of the UTM zone: within a degree or two of true north inside one zone.
    ax.annotate(
        "N\n北",
        xy=(0.95, 0.97),
        xytext=(0.95, 0.85),
        xycoords="axes fraction",
        ha="center",
        va="center",
        fontsize=10,
        weight="bold",
        arrowprops={"arrowstyle": "-|>", "color": "black", "linewidth": 1.5},
        zorder=6,
    )


def _basemap(ax, metric, url: str) -> str:
    """Draw XYZ tiles under the layers; return the credit line (or what went wrong)."""
    import contextily

    try:
        contextily.add_basemap(ax, crs=metric, source=url, attribution=False, zorder=0, reset_extent=True)
    except Exception as err:  # noqa: BLE001 - any failure of the tile server: the map is still useful
        warnings.warn(
            f"--tiles {url}: no base tiles drawn on map.png/map.pdf ({type(err).__name__}: {str(err)[:200]})",
            stacklevel=3,
        )
        return "底图获取失败 base tiles unavailable"
    host = url.split("//", 1)[-1].split("/", 1)[0]
    return f"底图 Tiles: {host}"


# --- the commands' pages -------------------------------------------------------------------------

_ROAD = "#b0b0b0"


def _roads(roads: gpd.GeoDataFrame | None) -> list[PrintLayer]:
    if roads is None or not len(roads):
        return []
    return [PrintLayer(roads, "line", _ROAD, [(_ROAD, "道路 Roads")], width=0.5, fit=False)]


def print_audit(
    folder: str | Path,
    title: str,
    homes: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    category_keys: Sequence[str],
    roads: gpd.GeoDataFrame | None = None,
) -> list[Path]:
    """The audit's page: homes by how many audited categories they reach within each one's
    target (all, some, none), facilities, roads."""
    cols = [f"{k}_within_target" for k in category_keys if f"{k}_within_target" in homes.columns]
    n = len(cols)
    within = homes[cols].fillna(False).astype(bool).to_numpy().sum(axis=1) if n else np.zeros(len(homes))
    classes = np.where((within == n) & (n > 0), "all", np.where(within > 0, "some", "none"))
    colours = {"all": "#1a9850", "some": "#fdae61", "none": "#d73027"}
    names = {
        "all": f"全部{n}类在目标内 all {n} categories within target",
        "some": "部分类别在目标内 some categories within target",
        "none": "无类别在目标内 none within target",
    }
    homes_layer = PrintLayer(
        homes,
        "point",
        [colours[c] for c in classes],
        [(colours[c], names[c]) for c in ("all", "some", "none")],
        size=6,
    )
    fac_layer = PrintLayer(
        facilities,
        "point",
        "#1f1f1f",
        [("#1f1f1f", f"设施 Facilities ({len(facilities)})")],
        size=14,
        marker="^",
        fit=False,
    )
    subtitle = "住宅点按目标内设施类别着色 homes by the categories within their target"
    return write_printable(folder, title, [*_roads(roads), homes_layer, fac_layer], subtitle=subtitle)


def print_site(
    folder: str | Path,
    title: str,
    homes: gpd.GeoDataFrame,
    status: np.ndarray,
    existing: gpd.GeoDataFrame,
    proposed: gpd.GeoDataFrame,
    minutes: float,
    roads: gpd.GeoDataFrame | None = None,
    subtitle: str = "",
) -> list[Path]:
    """The siting page: homes covered before, newly covered, outside; existing and proposed
    sites, the proposed labelled by rank."""
    colours = {"covered": "#1a9850", "newly": "#2c7bb6", "outside": "#d73027"}
    names = {
        "covered": f"已覆盖 covered before (≤ {minutes:g} min)",
        "newly": "新增覆盖 newly covered",
        "outside": "未覆盖 not covered",
    }
    layers = [
        *_roads(roads),
        PrintLayer(
            homes, "point", [colours[s] for s in status], [(colours[s], names[s]) for s in colours], size=6
        ),
        PrintLayer(
            existing,
            "point",
            "#7f7f7f",
            [("#7f7f7f", f"现有设施 Existing ({len(existing)})")],
            size=30,
            marker="s",
            edge="white",
            fit=False,
        ),
        PrintLayer(
            proposed,
            "point",
            "#7b3294",
            [("#7b3294", f"拟建 Proposed sites ({len(proposed)})")],
            size=110,
            marker="*",
            edge="black",
            width=0.5,
        ),
    ]
    labels = []
    if len(proposed):
        pts = proposed.to_crs(4326).geometry.representative_point()
        labels = [(p.x, p.y, f"#{r}") for p, r in zip(pts, proposed["rank"], strict=True)]
    return write_printable(folder, title, layers, labels=labels, subtitle=subtitle)


def print_villages(
    folder: str | Path,
    title: str,
    subtitle: str,
    villages: gpd.GeoDataFrame,
    status: np.ndarray,
    colours: dict[str, tuple[str, str]],
    facilities: gpd.GeoDataFrame,
    admin: gpd.GeoDataFrame | None = None,
    stations: gpd.GeoDataFrame | None = None,
    roads: gpd.GeoDataFrame | None = None,
) -> list[Path]:
    """The villages page: hamlets by coverage (``colours``: status → (colour, label)), labelled
    by name; administrative villages outlined; facilities; proposed stations by rank."""
    layers = [
        PrintLayer(
            villages,
            "area",
            [colours[s][0] for s in status],
            list(colours.values()),
            alpha=0.45,
            edge="#444444",
            width=0.4,
        )
    ]
    if admin is not None and len(admin):
        outline = admin.assign(geometry=admin.geometry.boundary)
        layers.append(
            PrintLayer(
                outline, "line", "#333333", [("#333333", "行政村界 Administrative villages")], width=1.2
            )
        )
    layers += _roads(roads)
    layers.append(
        PrintLayer(
            facilities,
            "point",
            "#ffffff",
            [("#ffffff", "设施 Facilities")],
            size=18,
            edge="#1f1f1f",
            width=1.0,
            fit=False,
        )
    )
    labels = []
    pts = villages.geometry.representative_point()
    for p, name, vid in zip(pts, villages["name"], villages["village_id"], strict=True):
        labels.append((p.x, p.y, name if isinstance(name, str) and name else str(vid)))
    if stations is not None and len(stations):
        st = stations.to_crs(villages.crs)
        layers.append(
            PrintLayer(
                st,
                "point",
                "#2166ac",
                [("#2166ac", f"拟建站点 Proposed stations ({len(st)})")],
                size=60,
                edge="white",
            )
        )
        sp = st.geometry.representative_point()
        labels += [(p.x, p.y, f"#{r}") for p, r in zip(sp, st["rank"], strict=True)]
    return write_printable(folder, title, layers, labels=labels, subtitle=subtitle, labels_crs=villages.crs)
