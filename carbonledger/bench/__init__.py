"""The benchmark: a simulated city through the running services."""
