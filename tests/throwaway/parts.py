"""What the throwaway app adds to retention, one object each, at module level: so that a
second `ready()` (tests that change INSTALLED_APPS run it again) registers the same objects
again, which changes nothing."""

from django.contrib import admin
from django.db.models import Case, Q, Value, When
from django.db.models.functions import Length

from retention.account import Section
from retention.figures import Figures
from retention.mail.links import Purpose
from retention.mail.models import OutboxMessage
from retention.mail.previews import Preview
from retention.nightly import Step
from retention.sales.admin import CustomerInline
from retention.sales.models import Enrolment
from retention.value.atrisk import Reason


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


def vip_words(row, facts):
    return f"VIP of {facts['domain']} ({facts['length']} chars)"


def twice_the_buyers(counted, figures):
    return {"throwaway_buyers_twice": figures["buyers"] * 2 + counted["zero"]}


def count_nothing(scope):
    return {"zero": 0}


class EnrolmentsInline(admin.TabularInline):
    model = Enrolment
    fields = ["course", "progress_percent"]
    readonly_fields = fields
    extra = 0
    verbose_name_plural = "throwaway enrolments"


SECTION = Section(order=50, template="throwaway/section.html", context=vip_section)
STEP = Step(order=95, name="throwaway tidy-up", run=tidy_up)
REASON = Reason("vip", "A VIP", annotate=vip_annotate, present=Q(vip_domain__isnull=False),
                facts={"domain": "vip_domain", "length": "vip_length"}, describe=vip_words,
                order=70, telling=5)
FIGURES = Figures(name="throwaway.buyers", keys=("throwaway_buyers_twice",), count=count_nothing,
                  finish=twice_the_buyers,
                  definitions={"throwaway_buyers_twice": "Twice the buyers (a test figure)."})
PURPOSE = Purpose("throwaway", days=3)  # its app makes its own URLs from links.token
PREVIEW = Preview("email/throwaway", "A throwaway email", OutboxMessage.Kind.TRANSACTIONAL)
INLINE = CustomerInline(order=70, inline=EnrolmentsInline)
