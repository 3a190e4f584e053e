"""The models of every area of the `retention` app, gathered for Django (which loads an app's
models from its `models` module). Code inside retention imports a model from its area's
module (`retention.sales.models`, …), never from here, so that this gathering cannot
close an import circle."""

from retention.sales.models import (  # noqa: F401
    Alert,
    AlertRule,
    AtRisk,
    Bundle,
    ClvFit,
    ConsentRecord,
    ContactPreferences,
    Course,
    Customer,
    CustomerPrediction,
    CustomerSegment,
    DataChange,
    EmailClick,
    Enrolment,
    FollowUp,
    LinkRequest,
    Membership,
    MetricSnapshot,
    NightlyRun,
    Order,
    OrderLine,
    OutboxMessage,
    PriceChange,
    ReEngagementList,
    ReEngagementMember,
    StoredReport,
    Suppression,
    SupportTicket,
    Target,
    Topic,
)
