"""Surveys: models arrive with the surveys issue."""
