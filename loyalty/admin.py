"""Admin for loyalty: registered here as its models arrive."""
