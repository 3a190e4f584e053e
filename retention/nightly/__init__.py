"""Nightly: the pipeline the schedule runs once a day, a registered step at a time.

    from retention import nightly
    nightly.run(night)

    from retention.nightly import Night, Step, register_step   # an app adding its step
"""

from retention.nightly.pipeline import Night, Step, register_step, run

__all__ = ["Night", "Step", "register_step", "run"]
