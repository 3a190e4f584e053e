"""Everything a program adds to retention, from its AppConfig.ready(), the way README's
*Extending* shows it (the objects themselves are in parts.py, at module level)."""

from django.apps import AppConfig


class ThrowawayConfig(AppConfig):
    name = "tests.throwaway"
    label = "throwaway"

    def ready(self):
        from retention.account import register_section
        from retention.figures import register_figures
        from retention.mail import links, previews
        from retention.nightly import register_step
        from retention.sales.admin import register_customer_inline
        from retention.value.atrisk import register_reason
        from tests.throwaway import parts

        register_section(parts.SECTION)
        register_step(parts.STEP)
        register_reason(parts.REASON)
        register_figures(parts.FIGURES)
        links.register_purpose(parts.PURPOSE)
        previews.register(parts.PREVIEW)
        register_customer_inline(parts.INLINE)
