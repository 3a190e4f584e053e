"""Figures: the period metrics of the spec, their stored snapshots and report tables, cohorts,
segments and their moves, the customers behind a figure, quarter targets, metric alerts, and
the effect of a price update."""
