"""The leaderboard as PNG bar plots, one per paper table, byte-identical for identical inputs (fixed rcParams, no
metadata)."""

from __future__ import annotations

import io
import math

from most_eval.report.leaderboard.collect import LeaderboardTable, _num


# Fixed style so the PNG bytes do not depend on the user's matplotlibrc.
_PLOT_RC = {
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.titlesize": 9,
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "path.simplify": False,
    "svg.hashsalt": "most-eval",
    "text.parse_math": False,  # a model name is text: "$\\macro{$" is drawn as typed, never parsed as mathtext
}


_COLOURS = {"paper": "#9aa5b1", "most": "#1f5fbf", "run": "#e08a00", "apart": "#d9d9d9"}


def _panels(table: LeaderboardTable) -> list[tuple[str, list[tuple[str, float, str, str]]]]:
    """(panel title, [(label, value, colour key, printed value)]) per column (and per task for asr_tts), best value
    on top."""
    f = table.paper_table
    tasks = sorted({r.keys.get("task", "") for r in table.rows}, key=lambda t: (t != "asr", t))
    panels = []
    for task in tasks:
        for c in f.columns:
            bars = []
            for r in table.rows:
                if r.keys.get("task", "") != task:
                    continue
                v = _num(r.values[c])
                if v is not None:
                    kind = ("run" if r.comparable else "apart") if r.is_run else ("most" if r.highlight else "paper")
                    bars.append((r.keys["model"], v, kind, r.values[c]))
            if not bars:
                continue
            bars.sort(key=lambda b: (b[1] if f.lower_is_better else -b[1], b[0]), reverse=True)  # best at the top
            title = f"{task.upper()} {c}" if task else c
            panels.append((title, bars))
    return panels


def render_plot(table: LeaderboardTable) -> bytes:
    """One PNG per paper table: a horizontal bar panel per column. Byte-reproducible (fixed rc, no metadata)."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = _panels(table) or [("(no values)", [])]
    f = table.paper_table
    ncols = 4 if len(panels) % 4 == 0 else 3
    nrows = max(1, math.ceil(len(panels) / ncols))
    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(_PLOT_RC)
        fig = Figure(figsize=(4.2 * ncols, 0.25 * max(max(len(b) for _, b in panels), 1) * nrows + 1.2 * nrows + 0.6))
        FigureCanvasAgg(fig)
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for ax, (title, bars) in zip(axes.flat, panels):
            labels = [b[0] for b in bars]
            values = [b[1] for b in bars]
            ax.barh(range(len(bars)), values, color=[_COLOURS[b[2]] for b in bars])
            ax.set_yticks(range(len(bars)), labels)
            ax.set_title(title)
            ax.set_xlabel(f.unit)
            top = max(values) if values else 1.0
            ax.set_xlim(0, top * 1.18)
            for y, (_, v, _, printed) in enumerate(bars):
                ax.text(v + top * 0.01, y, printed, va="center", fontsize=7)
        for ax in list(axes.flat)[len(panels):]:
            ax.set_visible(False)
        direction = "lower is better" if f.lower_is_better else "higher is better"
        fig.suptitle(f"{f.title} ({direction}); blue = MoST (paper), orange = runs, "
                     f"light grey = runs not comparable with the paper")
        fig.tight_layout()
        png = io.BytesIO()
        fig.savefig(png, format="png", metadata={"Software": None}, dpi=100)
    return png.getvalue()
