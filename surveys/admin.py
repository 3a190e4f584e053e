"""Admin for surveys: registered here as its models arrive."""
