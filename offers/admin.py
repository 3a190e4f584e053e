"""Admin for offers and campaigns: registered here as its models arrive."""
