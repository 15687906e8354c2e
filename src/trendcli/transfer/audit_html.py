"""The audit's HTML page: one self-contained file, surrogates ranked by transfer risk."""

from __future__ import annotations

import html
import os
import tempfile
from pathlib import Path
from typing import Any

from trendcli.errors import FileAccessError
from trendcli.stats import fmt_interval, fmt_rate, fmt_tm

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; width: 100%; }
th, td { padding: .3rem .6rem; border-bottom: 1px solid #ddd; text-align: right; }
td { white-space: nowrap; } td:nth-child(2) { white-space: normal; }
th:nth-child(2), td:nth-child(2) { text-align: left; }
.bar { display: inline-block; height: .7rem; background: #c0392b; vertical-align: middle; }
.muted { color: #777; }
"""


def _rate_cell(record: dict[str, Any] | None, fmt: Any = fmt_tm) -> str:
    if not record or record.get("rate") is None:
        return '<td class="muted">n/a</td><td class="muted">-</td><td class="muted">0 of 0</td>'
    width = max(1, round(100 * record["rate"]))
    return (f'<td>{fmt(record["rate"])} <span class="bar" style="width:{width}px"></span></td>'
            f'<td>{fmt_interval(record["interval"])}</td><td>{record["k"]} of {record["n"]}</td>')


def _overall(overall: dict[str, Any] | None) -> str:
    if not overall:
        return "<p class='muted'>No per-image outcomes: the worst case over surrogates is not available.</p>"
    rows = [
        ("worst case over surrogates: TM", "an image counts when some surrogate's attack counts for TM (both right "
         "clean, the surrogate fooled); it transfers when one such adversarial image fools the target",
         overall["worst_case_tm"], fmt_tm),
        ("accuracy under every surrogate's set", "right on the clean image and on every surrogate's adversarial image",
         overall["worst_case_accuracy"], fmt_rate),
        ("clean accuracy", "on the audited images", overall["clean_accuracy"], fmt_rate),
    ]
    body = "".join(f"<tr><td></td><td>{html.escape(name)}<br><span class='muted'>{html.escape(note)}</span></td>"
                   f"{_rate_cell(rec, fmt)}</tr>" for name, note, rec, fmt in rows)
    return ("<table><tr><th></th><th>measure</th><th>rate</th><th>95 % interval</th><th>k of n</th></tr>"
            f"{body}</table>")


def render_audit_html(record: dict[str, Any]) -> str:
    """The page for an audit record (trendcli.transfer.audit.audit_from_matrix)."""
    target = record["target"]
    attack = record.get("attack") or {}
    params = ", ".join(f"{k}={v}" for k, v in (attack.get("params") or {}).items())
    rows = "".join(
        f"<tr><td>{r['rank']}</td><td>{html.escape(str(r['surrogate']))}</td>{_rate_cell(r['risk'])}</tr>"
        for r in record["surrogates"]
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Transfer-risk audit: {html.escape(str(target['name']))}</title>
<style>{_STYLE}</style></head><body>
<h1>Transfer-risk audit of {html.escape(str(target['name']))}</h1>
<p>Attack {html.escape(str(attack.get('method', '?')))}({html.escape(params)}) on {attack.get('n_images', '?')}
{html.escape(str(attack.get('split', '')))} images of {html.escape(str(attack.get('dataset', '')))}, crafted on each
surrogate and evaluated on the target. Risk: {html.escape(record['risk_definition'])}.</p>
<h2>Overall</h2>
{_overall(record.get('overall'))}
<h2>Surrogates, ranked by transfer risk</h2>
<table><tr><th>rank</th><th>surrogate</th><th>risk</th><th>95 % interval</th><th>N_t of N_g</th></tr>
{rows}</table>
</body></html>
"""


def write_audit_html(record: dict[str, Any], path: str | Path) -> Path:
    """Write the page atomically (temporary file + rename)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(render_audit_html(record))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        raise FileAccessError(f"cannot write {path}: {exc.strerror}") from None
    return path
