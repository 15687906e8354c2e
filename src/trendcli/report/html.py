"""`trend report`: one static HTML page describing a study run, and its findings beside the paper's.

Writes DIR/index.html (self-contained: images embedded as data URIs), DIR/findings.md (a
markdown table: claim | paper | this run | holds?) and DIR/findings.json, each atomically.
The run's files are read by trendcli.report.runs; the findings' rules are in
trendcli.report.findings and trendcli.report.ensemble_findings (the latter shared with `trend
evaluate`), applied to the run by trendcli.report.run_findings.
"""

from __future__ import annotations

import base64
import html
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from trendcli.errors import UsageError
from trendcli.report.findings import READING_NOTE, Finding, evidence, findings_markdown
from trendcli.report.run_findings import compute_findings
from trendcli.report.runs import Run, RunFileError, checked_number, load_run
from trendcli.stats import HOLDS, VERDICTS, fmt_interval, fmt_number, fmt_rate, fmt_ratio, fmt_tm

__all__ = ["FINDINGS_END", "FINDINGS_START", "Report", "Run", "RunFileError", "compute_findings", "findings_table",
           "load_run", "render_html", "splice_findings", "write_report"]

FINDINGS_START = "<!-- findings:start -->"
FINDINGS_END = "<!-- findings:end -->"
LOW_NOTE = "Paper numbers are CIFAR-10 (ResNet18) unless stated; this run's dataset and models may differ."


# -- HTML --------------------------------------------------------------------------------------------

CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;background:#f6f8fa;margin:0}
main{max-width:1180px;margin:0 auto;padding:24px 32px 48px;background:#fff}
header{background:#0b3d91;color:#fff;padding:20px 32px}header h1{margin:0;font-size:26px}
header p{margin:4px 0 0;opacity:.85}nav{background:#e8eef8;padding:8px 32px;font-size:14px}
nav a{margin-right:18px;color:#0b3d91;text-decoration:none;font-weight:600}
h2{border-bottom:2px solid #0b3d91;padding-bottom:4px;margin-top:36px;color:#0b3d91}h3{margin-bottom:6px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13.5px}
th,td{border:1px solid #d0d7de;padding:4px 9px;text-align:left;vertical-align:top}
th{background:#eef2f7}tr:nth-child(even) td{background:#fafbfc}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}.tw{overflow-x:auto;max-width:100%}
img{max-width:100%;border:1px solid #d0d7de;margin:6px 0}
.figs{display:flex;flex-wrap:wrap;gap:14px}.figs figure{margin:0;flex:1 1 420px}figcaption{font-size:12px;color:#57606a}
.muted{color:#57606a}.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #d0d7de;border-radius:8px;padding:10px 16px;min-width:150px;background:#f6f8fa}
.card b{display:block;font-size:22px;color:#0b3d91}
.holds td.v{background:#dafbe1;color:#116329;font-weight:700}.nothold td.v{background:#ffebe9;color:#a40e26;font-weight:700}
.unmeasured td.v{background:#eaeef2;color:#57606a;font-weight:700}
.inconclusive td.v{background:#fff8c5;color:#7d4e00;font-weight:700}
footer{margin-top:40px;border-top:1px solid #d0d7de;padding-top:10px;font-size:12.5px;color:#57606a}
pre{background:#f6f8fa;padding:10px;overflow:auto;font-size:12px}code{font-size:90%}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], num_from: int = 99) -> str:
    """An HTML table; cells are escaped text, columns from ``num_from`` on right-aligned."""
    out = ['<div class="tw"><table><thead><tr>', *(f"<th>{_e(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for row in rows:
        cells = "".join(f"<td{' class=num' if i >= num_from else ''}>{_e(c)}</td>" for i, c in enumerate(row))
        out.append(f"<tr>{cells}</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _img(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{_e(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _quant(spec: dict[str, Any]) -> str:
    iq = str(spec.get("input_quant", "?")).upper().replace("_", "-")
    text = f"{iq}-W{spec.get('weight_bits', '?')}-A{spec.get('act_bits', '?')}"
    return text + (" (per image)" if spec.get("per_image") else "")


def _section_summary(run: Run, findings: list[Finding]) -> str:
    trained = sum(m.card is not None for m in run.models)
    tally = {v: sum(f.verdict == v for f in findings) for v in VERDICTS}
    cards = [("models trained", f"{trained} / {len(run.models)}"), ("matrices", len(run.matrices)),
             ("ensembles", len(run.ensembles)), ("evaluations", len(run.evaluations)), ("exports", len(run.exports)),
             ("findings that hold", f"{tally[HOLDS]} / {len(findings)}")]
    out = ['<section id="summary"><h2>Summary</h2><div class="cards">']
    out += [f'<div class="card"><b>{_e(v)}</b>{_e(k)}</div>' for k, v in cards]
    out.append("</div>")
    for ens in run.ensembles:
        members = " + ".join(str(m["id"]) for m in ens.data["members"])
        out.append(f"<p>Ensemble <b>{_e(ens.name)}</b>: {_e(members)}</p>")
    for ev in run.evaluations:
        if ev.data.get("headline"):
            out.append(f"<p>Evaluation <b>{_e(ev.name)}</b> ({_e(ev.data.get('n_images', '?'))} images):</p><ul>")
            out += [f"<li>{_e(h)}</li>" for h in ev.data["headline"]]
            out.append("</ul>")
    seconds = sum(float(r.get("seconds") or 0) for r in run.task_records)
    if run.task_records:
        out.append(f"<p class=muted>{len(run.task_records)} finished tasks, {seconds:.1f} s of task time in all"
                   + (f"; last run on the {_e(run.last_run.get('executor', '?'))} executor" if run.last_run else "")
                   + ".</p>")
    counts = ", ".join(f"{tally[v]} {v}" for v in VERDICTS)
    out.append(f"<p class=muted>Findings: {_e(counts)} (see <a href=\"#findings\">Findings</a>).</p></section>")
    return "".join(out)


def _section_models(run: Run) -> str:
    out = ['<section id="models"><h2>Models</h2>']
    if not run.models:
        return out[0] + "<p class=muted>No models in this run.</p></section>"
    rows = []
    for m in run.models:
        c = m.card
        if c is None:
            rows.append([m.name, "not trained", "", "", "", "", "", ""])
            continue
        spec, train, acc = c["spec"], c.get("train") or {}, c.get("accuracy") or {}
        rows.append([m.name, spec.get("arch", "?"), _quant(spec), train.get("optimizer", "?"), train.get("seed", "?"),
                     fmt_rate(acc.get("val")), fmt_rate(acc.get("test")), fmt_number(c.get("seconds"), 1)])
    out.append(_table(["name", "arch", "quantization (input-W-A)", "optimizer", "seed", "val acc.", "test acc.", "train s"],
                      rows, num_from=5))
    return "".join(out) + "</section>"


def _section_transfer(run: Run) -> str:
    from trendcli.transfer.counts import averages

    out = ['<section id="transferability"><h2>Transferability</h2>']
    if not run.matrices:
        return out[0] + "<p class=muted>No transferability matrix in this run.</p></section>"
    out.append("<p class=muted>TM(s&rarr;t) = N_t / N_g (paper eq. 1); rows = source, columns = target; "
               "averages leave out the diagonal; n/a = undefined (N_g = 0).</p>")
    for mx in run.matrices:
        atk = mx.data.get("attack") or {}
        params = ", ".join(f"{k}={v}" for k, v in (atk.get("params") or {}).items())
        out.append(f"<h3>{_e(mx.name)}</h3><p>{_e(atk.get('method', '?'))}({_e(params)}) on "
                   f"{_e(mx.data.get('n_images') or atk.get('n_images') or '?')} {_e(atk.get('split') or '')} images.</p>")
        out.append('<div class="figs">' + "".join(_img(p, p.name) for p in mx.pngs) + "</div>")
        rows_avg, cols_avg = averages(mx.tm)
        clean = mx.data.get("clean_accuracy") or {}
        rows = [[n, fmt_tm(r), fmt_tm(c), fmt_rate(checked_number(clean.get(n), mx.path, f"clean_accuracy.{n}"))]
                for n, r, c in zip(mx.names, rows_avg, cols_avg)]
        out.append(_table(["model", "row avg (as source)", "column avg (as target)", "clean acc."], rows, num_from=1))
    return "".join(out) + "</section>"


def _section_ensembles(run: Run) -> str:
    out = ['<section id="ensembles"><h2>Ensembles</h2>']
    if not run.ensembles:
        return out[0] + "<p class=muted>No designed ensemble in this run.</p></section>"
    for ens in run.ensembles:
        d = ens.data.get("design") if isinstance(ens.data.get("design"), dict) else {}
        out.append(f"<h3>{_e(ens.name)}</h3><p>tie-break <code>{_e(ens.data.get('tie_break', '?'))}</code>, design score "
                   f"(mean pairwise TM_sym) <b>{_e(fmt_tm(d.get('score')))}</b>, search {_e(d.get('search', '?'))}, "
                   f"matrix {_e(Path(str(d.get('matrix') or '?')).name)}.</p>")
        rows = []
        for m in ens.data["members"]:
            spec = (run.card_for(m.get("path")) or {}).get("spec", {})
            rows.append([m["id"], spec.get("arch", "?"), _quant(spec) if spec else "?", str(m.get("weights_sha256", ""))[:12]])
        out.append(_table(["member (design order)", "arch", "quantization", "weights sha256"], rows))
        if ens.candidates:
            crow = [[i + 1, " + ".join(map(str, c.get("members", []))), fmt_tm(c.get("score")), c.get("undefined_pairs", ""),
                     fmt_rate(c.get("mean_clean_accuracy"))] for i, c in enumerate(ens.candidates)]
            out.append(f"<p class=muted>Top candidates, {_e(ens.candidates_note)}:</p>")
            out.append(_table(["rank", "members", "mean TM_sym", "undefined pairs", "mean clean acc."], crow, num_from=2))
        else:
            out.append(f"<p class=muted>No candidate list: {_e(ens.candidates_note)}.</p>")
    return "".join(out) + "</section>"


def _section_robustness(run: Run) -> str:
    out = ['<section id="robustness"><h2>Robustness</h2>']
    if not run.evaluations:
        return out[0] + "<p class=muted>No ensemble evaluation in this run.</p></section>"
    out.append("<p class=muted>Adversarial accuracy = share of the evaluated images whose prediction on x_adv is right. "
               "Ensemble: under the ensemble attack (rule); members: white-box PGD on the member alone at the same eps; "
               "ratio = ensemble / member.</p>")
    for ev in run.evaluations:
        d = ev.data
        members = [str(m) for m in d["ensemble"]["members"]]
        s = d.get("settings") or {}
        out.append(f"<h3>{_e(ev.name)}</h3><p>{_e(d.get('n_images', '?'))} {_e(s.get('split', ''))} images; alpha "
                   f"{_e(s.get('alpha', '?'))}, {_e(s.get('steps', '?'))} steps; tie-break {_e(d['ensemble'].get('tie_break', '?'))}.</p>")
        out.append('<div class="figs">' + "".join(_img(p, p.name) for p in ev.pngs) + "</div>")
        clean = d["clean_accuracy"]
        tie = d["ensemble"].get("tie_break", "?")
        civ = clean.get("member_intervals") or {}
        out.append(_table(["clean accuracy [95 % interval]", "ensemble", *members],
                          [["", _rate_iv(clean.get("ensemble"), clean.get("interval")),
                            *(_rate_iv((clean.get("members") or {}).get(m), civ.get(m)) for m in members)]], num_from=1))
        rows = []
        for r in sorted(d["table"], key=lambda r: (r["attack"], r["eps"])):
            pgd = r.get("member_pgd_accuracy") or {}
            piv = r.get("member_pgd_accuracy_interval") or {}
            ratio = r.get("ratio") or {}
            acc = r.get("ensemble_accuracy")
            others = {tb: a for tb, a in (r.get("ensemble_accuracy_by_tie_break") or {}).items() if tb != tie}
            rows.append([r["attack"], f"{r['eps']:g}", _rate_iv(acc, r.get("ensemble_accuracy_interval")),
                         fmt_rate(None if acc is None else 1 - acc),
                         ", ".join(f"{tb} {fmt_rate(a)}" for tb, a in others.items()) or "n/a",
                         *(f"{_rate_iv(pgd.get(m), piv.get(m))} ({fmt_ratio(ratio.get(m))})" for m in members)])
        out.append(_table(["attack", "eps", f"ensemble adv. acc. [95 %] (tie-break {tie})", "attack success",
                           "same images, other tie-breaks",
                           *(f"{m}: {s.get('member_attack') or 'pgd'} acc. [95 %] (ratio)" for m in members)],
                          rows, num_from=1))
        transfer = d.get("transfer") or {}
        if transfer:
            trows = [[f"{float(e):g}", t.get("source", "?"), fmt_rate(t.get("ensemble_accuracy")),
                      *(fmt_rate((t.get("member_accuracy") or {}).get(m)) for m in members)] for e, t in transfer.items()]
            out.append("<p>Black-box transfer (PGD on an outside model):</p>")
            out.append(_table(["eps", "source", "ensemble", *members], trows, num_from=2))
        for step, why in (d.get("not_run") or {}).items():
            out.append(f"<p>Not run: {_e(step)} ({_e(why)}).</p>")
    return "".join(out) + "</section>"


def _rate_iv(rate: Any, interval: Any) -> str:
    """A rate and its Wilson 95 % interval: ``0.8700 [0.838, 0.897]`` (the rate alone without one)."""
    iv = fmt_interval(interval)
    return fmt_rate(rate) if iv == "n/a" else f"{fmt_rate(rate)} {iv}"


def _size(n: int | None) -> str:
    if n is None:
        return "n/a"
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024:.1f} KiB" if n < 1024**2 else f"{n / 1024**2:.1f} MiB"


def _section_export(run: Run) -> str:
    out = ['<section id="export"><h2>Export</h2>']
    if not run.exports:
        return out[0] + "<p class=muted>No ONNX export in this run.</p></section>"
    rows = []
    for ex in run.exports:
        meta, inf = ex.metadata or {}, ex.infer or {}
        lat = inf.get("latency_ms") or {}
        agree = (inf.get("agreement") or {}).get("mean_pairwise")
        rows.append([
            ex.onnx.name if ex.onnx else f"{ex.name}.onnx (absent)",
            _size(ex.onnx_bytes),
            " + ".join(str(m.get("id")) for m in meta.get("members", [])) or "?",
            meta.get("tie_break", "?"), meta.get("opset", "?"),
            f"{inf.get('n', '?')} {inf.get('split', '')}".strip() if inf else "not run",
            fmt_rate(inf.get("accuracy")), fmt_rate(agree), fmt_number(inf.get("images_per_s"), 0),
            fmt_number(lat.get("p50"), 2), fmt_number(lat.get("p99"), 2), inf.get("provider", "n/a"),
        ])
    out.append(_table(["file", "size", "members", "tie-break", "opset", "images", "accuracy", "member agreement",
                       "images/s", "p50 ms/batch", "p99 ms/batch", "provider"], rows, num_from=6))
    out.append("<p class=muted>The export runs input quantization per image; latency is per batch (session.run only).</p>")
    return "".join(out) + "</section>"


def _section_findings(findings: list[Finding]) -> str:
    out = ['<section id="findings"><h2>Findings</h2>', f"<p class=muted>{_e(LOW_NOTE)} Each verdict follows a fixed rule "
           "(trendcli.report.findings, trendcli.report.ensemble_findings); nothing is tuned toward the paper.</p>",
           "<table><thead><tr><th>claim</th><th>paper</th><th>this run</th><th>verdict</th><th>test</th><th>p</th>"
           "<th>effect [95 % interval]</th><th>n</th></tr></thead><tbody>"]
    css = {"holds": "holds", "does not hold": "nothold", "inconclusive": "inconclusive", "not measured": "unmeasured"}
    for f in findings:
        ev = evidence(f)
        out.append(f'<tr class="{css[f.verdict]}"><td>{_e(f.claim)}</td><td>{_e(f.paper)}</td><td>{_e(f.this_run)}'
                   + (f'<br><span class=muted>{_e(f.source)}</span>' if f.source else "")
                   + f'</td><td class="v">{_e(f.verdict)}</td><td>{_e(ev["test"])}</td><td class="num">{_e(ev["p"])}</td>'
                   + f'<td class="num">{_e(ev["effect"])}</td><td class="num">{_e(ev["n"])}</td></tr>')
    return "".join(out) + f"</tbody></table><p class=muted>{_e(READING_NOTE)}</p></section>"


def _footer(run: Run, generated: str) -> str:
    from trendcli.versions import library_versions

    now = ", ".join(f"{k} {v}" for k, v in library_versions().items())
    trained = next((m.card.get("versions") for m in run.models if m.card and isinstance(m.card.get("versions"), dict)), None)
    out = [f"<footer><p>Generated {_e(generated)} by <code>trend report</code> with {_e(now)}.</p>"]
    if trained:
        out.append(f"<p>Models trained with {_e(', '.join(f'{k} {v}' for k, v in trained.items()))}.</p>")
    study_file = (run.study or {}).get("study")
    if study_file:
        out.append(f"<p>Study file: <code>{_e(study_file)}</code>; run directory <code>{_e(run.path)}</code>.</p>")
        path = Path(str(study_file))
        if path.is_file():
            out.append(f"<details><summary>{_e(path.name)}</summary><pre>{_e(path.read_text())}</pre></details>")
    return "".join(out) + "</footer>"


def render_html(run: Run, findings: list[Finding], generated: str | None = None) -> str:
    """The report page: one self-contained HTML document (images as data URIs, all text escaped)."""
    generated = generated or datetime.now(timezone.utc).isoformat(timespec="seconds")
    from trendcli.report import robustness

    sections = [("summary", "Summary"), ("models", "Models"), ("transferability", "Transferability"),
                ("ensembles", "Ensembles"), ("robustness", "Robustness"), (robustness.SECTION_ID, "Adaptive attacks"),
                ("export", "Export"), ("findings", "Findings")]
    nav = "".join(f'<a href="#{k}">{_e(v)}</a>' for k, v in sections)
    body = [_section_summary(run, findings), _section_models(run), _section_transfer(run), _section_ensembles(run),
            _section_robustness(run), robustness.section_html(run), _section_export(run), _section_findings(findings),
            _footer(run, generated)]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>TREND report: {_e(run.name)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>TREND report: {_e(run.name)}</h1><p>dataset {_e(run.dataset)} &middot; run directory {_e(run.path)}</p></header>"
        f"<nav>{nav}</nav><main>{''.join(body)}</main></body></html>\n"
    )


# -- writing -----------------------------------------------------------------------------------------


def _write_text_atomic(path: Path, text: str) -> None:
    """Temp file beside ``path`` + rename; an existing file keeps its mode, a new one is 0644."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class Report:
    """What write_report wrote, and the findings."""

    index: Path
    findings_md: Path
    findings_json: Path
    findings: list[Finding]
    readme: Path | None = None
    readme_changed: bool = False

    def summary(self) -> dict[str, Any]:
        """JSON-ready: the paths and each finding's verdict."""
        return {"index": str(self.index), "findings_md": str(self.findings_md), "findings_json": str(self.findings_json),
                "readme": str(self.readme) if self.readme else None, "readme_changed": self.readme_changed,
                "findings": [{"key": f.key, "verdict": f.verdict, "this_run": f.this_run} for f in self.findings]}


def findings_table(run: Run, findings: list[Finding]) -> str:
    """findings.md: a provenance line and the markdown table."""
    heading = (f"Findings of study `{run.name}` on {run.dataset}, produced by `trend report` from the run's files. "
               f"{LOW_NOTE}")
    return findings_markdown(findings, heading)


def write_report(run_dir: str | Path, out_dir: str | Path | None = None, readme: str | Path | None = None) -> Report:
    """Write OUT/index.html, OUT/findings.md and OUT/findings.json for a run (default OUT: RUN/report).

    With ``readme``, also replace the README's findings table between its markers (splice_findings).
    """
    run = load_run(run_dir)
    out = Path(out_dir) if out_dir is not None else run.path / "report"
    findings = compute_findings(run)
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    md = findings_table(run, findings)
    index = out / "index.html"
    _write_text_atomic(index, render_html(run, findings, generated))
    _write_text_atomic(out / "findings.md", md)
    record = {"study": run.name, "dataset": run.dataset, "run_dir": str(run.path), "generated": generated,
              "findings": [f.to_dict() for f in findings]}
    _write_text_atomic(out / "findings.json", json.dumps(record, indent=2) + "\n")
    report = Report(index, out / "findings.md", out / "findings.json", findings)
    if readme is not None:
        report.readme = Path(readme)
        report.readme_changed = splice_findings(readme, md)
    return report


def splice_findings(readme_path: str | Path, findings_md: str) -> bool:
    """Replace the text between the README's findings markers with ``findings_md`` (atomic write).

    The marker lines stay; everything outside them is kept byte for byte. Returns whether the
    file changed. UsageError when the markers are missing, repeated or out of order.
    """
    path = Path(readme_path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    starts, ends = text.count(FINDINGS_START), text.count(FINDINGS_END)
    if starts != 1 or ends != 1:
        raise UsageError(f"{path} must hold exactly one {FINDINGS_START} and one {FINDINGS_END} line "
                         f"(found {starts} and {ends}); add them where the findings table goes")
    head, rest = text.split(FINDINGS_START)
    if FINDINGS_END not in rest:
        raise UsageError(f"{path}: {FINDINGS_END} comes before {FINDINGS_START}; put the end marker after the start")
    _, tail = rest.split(FINDINGS_END)
    new = f"{head}{FINDINGS_START}\n{findings_md.strip()}\n{FINDINGS_END}{tail}"
    if new == text:
        return False
    _write_text_atomic(path, new)
    return True
