"""Built-in architectures, registered through the trendcli entry-point group like any plugin."""
