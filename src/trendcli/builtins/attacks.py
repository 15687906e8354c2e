"""Built-in attacks, registered through the trendcli entry-point group like any plugin."""
