"""Built-in rules, registered through the trendcli entry-point group like any plugin."""
