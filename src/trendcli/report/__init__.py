"""Reports: run loading (runs), one verdict rule per claim (findings, ensemble_findings), the run's findings (run_findings), the HTML page (html)."""
