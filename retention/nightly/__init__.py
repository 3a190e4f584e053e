"""Nightly: the pipeline the schedule runs once a day, a step at a time, each recorded.

    from retention import nightly
    nightly.run(night)
"""

from retention.nightly.pipeline import run

__all__ = ["run"]
