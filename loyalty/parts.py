"""What loyalty adds to retention's registries (loyalty/apps.py registers them)."""

from retention.account import Section
from retention.mail.links import Purpose
from retention.mail.models import OutboxMessage, Topic
from retention.mail.previews import Preview

Kind = OutboxMessage.Kind

# Redeeming from the customer's page: the link behind its buttons (the page's own is
# "account"); short-lived, since the page makes a new one each time it is shown.
PURPOSE = Purpose("loyalty", days=2)

PREVIEWS = [
    Preview("email/loyalty_redemption", "Loyalty: the code of a redeemed reward",
            Kind.TRANSACTIONAL, sample={"reward": "15 % off your next course",
                                        "code": "R-ABCD-EFGH-JKMN", "points": 1500,
                                        "available": 320, "expires_at": "2027-03-01"}),
    Preview("email/loyalty_tier_up", "Loyalty: moved up a tier", Kind.MARKETING, Topic.LOYALTY,
            sample={"tier": "Gold", "qualifying": 2400, "basis": "points"}),
    Preview("email/loyalty_tier_down_warning", "Loyalty: about to move down a tier",
            Kind.MARKETING, Topic.LOYALTY,
            sample={"tier": "Gold", "grace_until": "2027-01-31",
                    "keep_tier": {"needed": 300, "by": "2027-01-31"}}),
    Preview("email/loyalty_expiry_warning", "Loyalty: points about to expire", Kind.MARKETING,
            Topic.LOYALTY, sample={"points": 420, "expires_on": "2027-01-15", "available": 900}),
]


def _section(customer):
    from loyalty.sections import context

    return context(customer)


# The customer's page: points, tier, lots, rewards, codes, referral link (loyalty/sections.py).
SECTION = Section(order=20, template="loyalty/section.html", context=_section)
