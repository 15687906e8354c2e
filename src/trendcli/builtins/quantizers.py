"""Built-in quantizers, registered through the trendcli entry-point group like any plugin."""
