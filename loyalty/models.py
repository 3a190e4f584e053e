"""Loyalty: models arrive with the loyalty issue."""
