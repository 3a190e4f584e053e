from django.apps import AppConfig
from django.conf import settings
from django.core import checks


class RetentionConfig(AppConfig):
    name = "retention"
    verbose_name = "Customers and orders"

    def ready(self):
        # Connect their signal receivers: the change log's, the email services' webhooks', and
        # the send task's (woken when email is queued, in every process, not only workers).
        from retention import tasks  # noqa: F401
        from retention.mail import webhooks  # noqa: F401
        from retention.sales import changes, signals  # noqa: F401

        checks.register(secret_key_is_set, checks.Tags.security, deploy=True)
        checks.register(webhook_has_a_secret, checks.Tags.security, deploy=True)
        checks.register(webhook_secret_while_developing, checks.Tags.security)
        checks.register(link_lifetimes_are_known)
        checks.register(no_deprecated_settings)
        register_contributions()


def secret_key_is_set(app_configs, **kwargs):
    """`check --deploy`: production needs a SECRET_KEY (settings leave it empty)."""
    if settings.SECRET_KEY_IS_SET:
        return []
    return [checks.Error(settings.SECRET_KEY_MISSING, id="retention.E001")]


def _webhook_without_secret(kind, id: str) -> list:
    if not settings.RETENTION_EMAIL_SERVICE or settings.ANYMAIL_WEBHOOK_SECRET:
        return []
    return [kind(settings.WEBHOOK_SECRET_MISSING, id=id,
                 hint="Set the same user:password in the service's webhook URL: "
                      "https://user:password@your-site/anymail/"
                      f"{settings.RETENTION_EMAIL_SERVICE}/tracking/")]


def webhook_has_a_secret(app_configs, **kwargs):
    """`check --deploy`: the email service's webhook needs its secret (the production server
    refuses to start without it too)."""
    return _webhook_without_secret(checks.Error, "retention.E003")


def webhook_secret_while_developing(app_configs, **kwargs):
    """While developing (DEBUG), say the webhook is not routed for want of a secret."""
    return _webhook_without_secret(checks.Warning, "retention.W002") if settings.DEBUG else []


def no_deprecated_settings(app_configs, **kwargs):
    """Settings set by a name they had before the RETENTION_ prefix: still read, but warned."""
    return [checks.Warning(f"The setting {old} is now {new}.",
                           hint=f"Rename {old} to {new} in the environment; the old name will "
                                "stop working in a later release.", id="retention.W001")
            for old, new in settings.DEPRECATED]


def link_lifetimes_are_known(app_configs, **kwargs):
    """RETENTION_LINK_DAYS names only link purposes that some app registered."""
    from retention.mail import links

    return [checks.Error(
        f"RETENTION_LINK_DAYS names {name!r}, which is not a link purpose.",
        hint=f"Use one of {', '.join(sorted(links.PURPOSES))}.", id="retention.E002")
        for name in links.unknown_lifetimes()]


def register_contributions() -> None:
    """Retention's own parts, registered through the same registries the programs use."""
    from retention.account import register_section, sections
    from retention.figures import engagement, memberships, referrals, register_figures
    from retention.mail import links, previews
    from retention.mail.links import register_purpose
    from retention.mail.previews import register as register_preview
    from retention.nightly import register_step, steps
    from retention.sales.admin import register_customer_inline
    from retention.value import figures as value_figures
    from retention.value import reasons
    from retention.value.atrisk import register_reason

    for figures in (memberships.FIGURES, engagement.FIGURES, referrals.FIGURES,
                    value_figures.FIGURES):
        register_figures(figures)
    for step in steps.STEPS:
        register_step(step)
    for reason in reasons.REASONS:
        register_reason(reason)
    for part in customer_admin_parts():
        register_customer_inline(part)
    for purpose in links.RETENTION_PURPOSES:
        register_purpose(purpose)
    for preview in previews.RETENTION_PREVIEWS:
        register_preview(preview)
    register_section(sections.COURSES)


def customer_admin_parts():
    """The inlines retention's areas add to the customer's admin page, in their places."""
    from retention.mail import admin as mail_admin
    from retention.sales.admin import CustomerInline
    from retention.value import admin as value_admin

    return [CustomerInline(20, mail_admin.PreferencesInline),
            CustomerInline(30, mail_admin.ConsentInline),
            CustomerInline(40, mail_admin.MessagesInline),
            CustomerInline(50, value_admin.PredictionInline),
            CustomerInline(60, value_admin.RiskInline)]
