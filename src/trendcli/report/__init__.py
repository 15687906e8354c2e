"""Reports: run loading, findings beside the paper's claims, the HTML page."""
