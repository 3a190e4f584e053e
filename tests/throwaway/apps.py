"""Everything a program adds to retention, from its AppConfig.ready(), the way README's
*Extending* shows it."""

from django.apps import AppConfig
from django.contrib import admin
from django.db.models import Case, Q, Value, When
from django.db.models.functions import Length


def vip_section(customer):
    if not customer.email.endswith("@vip.example"):
        return None  # nothing to show for this customer
    return {"greeting": f"Welcome back, {customer.display_name}"}


def tidy_up(night):
    return f"tidied up after {night.day.isoformat()}"


def vip_annotate(as_of, rows):
    return rows.annotate(vip_domain=Case(
        When(customer__email__endswith="@vip.example", then=Value("vip.example")),
        default=None), vip_length=Length("customer__email"))


def twice_the_buyers(counted, figures):
    return {"throwaway_buyers_twice": figures["buyers"] * 2 + counted["zero"]}


class ThrowawayConfig(AppConfig):
    name = "tests.throwaway"
    label = "throwaway"

    def ready(self):
        from retention.account import Section, register_section
        from retention.figures import Figures, register_figures
        from retention.mail import links, previews
        from retention.mail.models import OutboxMessage
        from retention.nightly import Step, register_step
        from retention.sales.admin import CustomerInline, register_customer_inline
        from retention.sales.models import Enrolment
        from retention.value.atrisk import Reason, register_reason

        register_section(Section(order=50, template="throwaway/section.html",
                                 context=vip_section))
        register_step(Step(order=95, name="throwaway tidy-up", run=tidy_up))
        register_reason(Reason(
            "vip", "A VIP", annotate=vip_annotate, present=Q(vip_domain__isnull=False),
            facts={"domain": "vip_domain", "length": "vip_length"},
            describe=lambda row, facts: f"VIP of {facts['domain']} ({facts['length']} chars)",
            order=70, telling=5))
        register_figures(Figures(
            name="throwaway.buyers", keys=("throwaway_buyers_twice",),
            count=lambda scope: {"zero": 0}, finish=twice_the_buyers,
            definitions={"throwaway_buyers_twice": "Twice the buyers (a test figure)."}))
        links.register_purpose(links.Purpose("throwaway", days=3))
        previews.register(previews.Preview("email/throwaway", "A throwaway email",
                                           OutboxMessage.Kind.TRANSACTIONAL))

        class EnrolmentsInline(admin.TabularInline):
            model = Enrolment
            fields = ["course", "progress_percent"]
            readonly_fields = fields
            extra = 0
            verbose_name_plural = "throwaway enrolments"

        register_customer_inline(CustomerInline(order=70, inline=EnrolmentsInline))
