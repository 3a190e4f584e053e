from django.apps import AppConfig


class LoyaltyConfig(AppConfig):
    name = "loyalty"
    verbose_name = "Loyalty"

    def ready(self):
        from loyalty import admin, parts, receivers  # noqa: F401  (receivers: points for orders)
        from loyalty.nightly import STEPS
        from retention import routes
        from loyalty import demo
        from retention.account import register_section
        from retention.demo import seeding
        from retention.mail import links, previews
        from retention.nightly import register_step
        from retention.sales.admin import register_customer_inline

        for step in STEPS:
            register_step(step)
        links.register_purpose(parts.PURPOSE)
        for preview in parts.PREVIEWS:
            previews.register(preview)
        register_section(parts.SECTION)
        register_customer_inline(admin.CUSTOMER_INLINE)
        routes.register_pages("loyalty/", "loyalty.urls")
        routes.register_api("loyalty/", "loyalty.api.urls")
        seeding.replacing.connect(demo.delete, dispatch_uid="loyalty-demo-delete")
        seeding.seeded.connect(demo.build, dispatch_uid="loyalty-demo-build")
