"""The customer's page, reached by a signed link, is made of sections.

Retention contributes the customer's courses (the email preferences follow the sections,
from the page's template); the loyalty, surveys and offers apps add theirs (points and tier, offers, referral link) with
`register_section`, without retention importing them.

Staff see the same page from the customer's admin page, as a preview: the template's
context then has `preview` true, and a section must offer nothing to post or follow as
the customer (no form that saves, no signed link) when it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured

from retention.sales.models import Customer, Enrolment


@dataclass(frozen=True)
class Section:
    """A part of the customer's page: a template and the context it needs."""

    order: int
    template: str
    context: Callable[[Customer], dict | None]  # None: nothing to show for this customer


SECTIONS: list[Section] = []


def register_section(section: Section) -> None:
    """Add a section to every customer's page (apps call this in their AppConfig.ready).

    Registering the same section again changes nothing; another section with the same
    template is refused (the page would show it twice).
    """
    if section in SECTIONS:
        return
    if any(other.template == section.template for other in SECTIONS):
        raise ImproperlyConfigured(f"a section with {section.template!r} is registered already")
    SECTIONS.append(section)
    SECTIONS.sort(key=lambda s: s.order)


def sections_for(customer: Customer) -> list[tuple[str, dict]]:
    """(template, context) of each section that has something to show."""
    shown = []
    for section in SECTIONS:
        context = section.context(customer)
        if context is not None:
            shown.append((section.template, context))
    return shown


def _courses(customer: Customer) -> dict | None:
    enrolments = list(Enrolment.objects.filter(customer=customer).select_related("course")
                      .order_by("completed_on", "-last_activity_at", "-started_on")[:20])
    return {"enrolments": enrolments} if enrolments else None


# Retention's own section (registered in retention/apps.py), first on the page.
COURSES = Section(order=10, template="account/section_courses.html", context=_courses)


