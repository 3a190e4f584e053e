"""The models of every area of the `retention` app, gathered for Django (which loads an app's
models from its `models` module). Code inside retention imports a model from its area's
module (`retention.sales.models`, …), never from here, so that this gathering cannot
close an import circle."""

from retention.account.models import LinkRequest
from retention.figures.models import (
    Alert,
    AlertRule,
    CustomerSegment,
    MetricSnapshot,
    StoredReport,
    Target,
)
from retention.mail.models import (
    ConsentRecord,
    ContactPreferences,
    EmailClick,
    OutboxMessage,
    Suppression,
    Topic,
)
from retention.nightly.models import NightlyRun
from retention.sales.models import (
    Bundle,
    Course,
    Customer,
    DataChange,
    Enrolment,
    Membership,
    Offering,
    Order,
    OrderLine,
    PriceChange,
    SupportTicket,
)
from retention.value.models import (
    AtRisk,
    ClvFit,
    CustomerPrediction,
    FollowUp,
    ReEngagementList,
    ReEngagementMember,
)

__all__ = [
    "Alert",
    "AlertRule",
    "AtRisk",
    "Bundle",
    "ClvFit",
    "ConsentRecord",
    "ContactPreferences",
    "Course",
    "Customer",
    "CustomerPrediction",
    "CustomerSegment",
    "DataChange",
    "EmailClick",
    "Enrolment",
    "FollowUp",
    "LinkRequest",
    "Membership",
    "MetricSnapshot",
    "NightlyRun",
    "Offering",
    "Order",
    "OrderLine",
    "OutboxMessage",
    "PriceChange",
    "ReEngagementList",
    "ReEngagementMember",
    "StoredReport",
    "SupportTicket",
    "Suppression",
    "Target",
    "Topic",
]
