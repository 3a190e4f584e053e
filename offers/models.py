"""Offers and campaigns: models arrive with the offers issue."""
