"""Built-in datasets, registered through the trendcli entry-point group like any plugin."""
