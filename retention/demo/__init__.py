"""Demo data: two years of an online-course business, generated from a seed (`seed_demo`).

    from retention import demo
    demo.seed(seed=42, as_of=date(2026, 12, 1))
"""

from retention.demo.seeding import DataExists, has_data, seed

__all__ = ["DataExists", "has_data", "seed"]
