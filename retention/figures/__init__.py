"""Figures: the period metrics of the spec, their stored snapshots and report tables, cohorts,
segments and their moves, the customers behind a figure, quarter targets, metric alerts, and
the effect of a price update.

Other parts add figures with `register_figures` (see retention/figures/registry.py):

    from retention.figures import Figures, register_figures
"""

from retention.figures.registry import Figures, Scope, register_figures

__all__ = ["Figures", "Scope", "register_figures"]
