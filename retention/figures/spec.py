"""The names of the metric specification (shared/spec/metrics.md), for every part to share.

The period metrics' keys, in the order the spec lists them, with a one-line definition
each (the managers' pages and the CSV exports show it beside the figure); which way is
better for each; and the named segments with the rule that names each. Other apps add
figures of their own through `retention.figures.register_figures`; these are the spec's.

A module of names only: it imports nothing of the project, so models and engines alike
may use it.
"""

KEYS = (
    "customers_start", "customers_end", "new_customers", "retained_customers",
    "reactivated_customers", "churned_customers", "retention_rate", "churn_rate", "orders",
    "revenue", "buyers", "repeat_purchase_rate", "repeat_customer_share",
    "returning_customer_rate", "purchase_frequency", "average_order_value",
    "existing_customer_revenue", "existing_customer_revenue_growth_rate", "historical_clv",
    "clv_simple", "predicted_clv_12m", "new_offering_engagement_rate", "nps", "nps_responses",
    "csat", "survey_response_rate", "referral_rate", "mrr_start", "mrr_churned",
    "mrr_churn_rate", "net_mrr_retention",
)

# One line per key, as the managers' page and its CSV show them (the spec in brief).
DEFINITIONS = {
    "customers_start": "Customers with a paid order in the W days before the period (S).",
    "customers_end": "Customers with a paid order in the W days up to the period's end (E).",
    "new_customers": "Customers whose first paid order ever is in the period.",
    "retained_customers": "Customers active both at the start and at the end (R).",
    "reactivated_customers": "Active at the end, not at the start, first order before the period.",
    "churned_customers": "Active at the start but not at the end: S − R.",
    "retention_rate": "R / S × 100.",
    "churn_rate": "100 − retention rate.",
    "orders": "Paid orders dated in the period.",
    "revenue": "Sum of those orders' amounts.",
    "buyers": "Customers with a paid order in the period.",
    "repeat_purchase_rate": "Buyers with 2 or more orders in the period / buyers × 100.",
    "repeat_customer_share": "Customers with 2+ paid orders up to the end / with 1+ × 100.",
    "returning_customer_rate": "Buyers whose first order is before the period / buyers × 100.",
    "purchase_frequency": "Orders / buyers.",
    "average_order_value": "Revenue / orders.",
    "existing_customer_revenue": "Revenue from customers whose first order is before the period.",
    "existing_customer_revenue_growth_rate": "Change of that revenue against the previous period, %.",
    "historical_clv": "All revenue up to the end / customers with a first order by then.",
    "clv_simple": "Revenue per buyer over the last 365 days × expected lifetime (100 / churn "
                  "rate, at most 10 years).",
    "predicted_clv_12m": "Mean predicted 12-month value of the customers active at the end.",
    "new_offering_engagement_rate": "Customers active at the start who bought or started a "
                                    "course or bundle new for the period / S × 100.",
    "nps": "Promoters (9-10) minus detractors (0-6), % of each customer's latest answer.",
    "nps_responses": "NPS answers in the period, one per customer.",
    "csat": "Satisfaction answers of 4 or 5 / answers × 100.",
    "survey_response_rate": "Invitations sent in the period and answered / sent × 100.",
    "referral_rate": "Customers who referred a new customer in the period / E × 100.",
    "mrr_start": "Monthly recurring revenue of memberships active at the start.",
    "mrr_churned": "MRR of those memberships that ended in the period, not renewed.",
    "mrr_churn_rate": "MRR churned / MRR at the start × 100.",
    "net_mrr_retention": "MRR at the end of the customers who had MRR at the start / MRR at "
                         "the start × 100.",
}
# What each key is called on the pages, in words.
LABELS = {
    "customers_start": "Active customers at the start",
    "customers_end": "Active customers at the end",
    "new_customers": "New customers",
    "retained_customers": "Retained customers",
    "reactivated_customers": "Reactivated customers",
    "churned_customers": "Churned customers",
    "retention_rate": "Retention rate",
    "churn_rate": "Churn rate",
    "orders": "Orders",
    "revenue": "Revenue",
    "buyers": "Buyers",
    "repeat_purchase_rate": "Repeat purchase rate",
    "repeat_customer_share": "Repeat customers",
    "returning_customer_rate": "Returning buyers",
    "purchase_frequency": "Orders per buyer",
    "average_order_value": "Average order value",
    "existing_customer_revenue": "Revenue from existing customers",
    "existing_customer_revenue_growth_rate": "Growth of existing customers' revenue",
    "historical_clv": "Lifetime value so far",
    "clv_simple": "Lifetime value (simple estimate)",
    "predicted_clv_12m": "Predicted value, next 12 months",
    "new_offering_engagement_rate": "Take-up of new courses and bundles",
    "nps": "Net Promoter Score",
    "nps_responses": "NPS answers",
    "csat": "Satisfaction (CSAT)",
    "survey_response_rate": "Survey response rate",
    "referral_rate": "Referral rate",
    "mrr_start": "Monthly recurring revenue at the start",
    "mrr_churned": "Monthly recurring revenue lost",
    "mrr_churn_rate": "MRR churn rate",
    "net_mrr_retention": "Net MRR retention",
}

# How each key's figure reads: a count of customers or orders, a percentage, money in the
# business currency, a plain number (orders per buyer), or a score (NPS, -100 to 100).
COUNT, PERCENT, MONEY, NUMBER, SCORE = "count", "percent", "money", "number", "score"
UNITS = {
    "customers_start": COUNT, "customers_end": COUNT, "new_customers": COUNT,
    "retained_customers": COUNT, "reactivated_customers": COUNT, "churned_customers": COUNT,
    "retention_rate": PERCENT, "churn_rate": PERCENT, "orders": COUNT, "revenue": MONEY,
    "buyers": COUNT, "repeat_purchase_rate": PERCENT, "repeat_customer_share": PERCENT,
    "returning_customer_rate": PERCENT, "purchase_frequency": NUMBER,
    "average_order_value": MONEY, "existing_customer_revenue": MONEY,
    "existing_customer_revenue_growth_rate": PERCENT, "historical_clv": MONEY,
    "clv_simple": MONEY, "predicted_clv_12m": MONEY, "new_offering_engagement_rate": PERCENT,
    "nps": SCORE, "nps_responses": COUNT, "csat": PERCENT, "survey_response_rate": PERCENT,
    "referral_rate": PERCENT, "mrr_start": MONEY, "mrr_churned": MONEY,
    "mrr_churn_rate": PERCENT, "net_mrr_retention": PERCENT,
}

# Spec "Targets": lower is better for these, higher for every other metric.
LOWER_IS_BETTER = frozenset({"churn_rate", "churned_customers", "mrr_churned", "mrr_churn_rate"})


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


# (name, rule): the first rule that holds names the customer's segment.
SEGMENTS = [
    ("inactive", "no paid order in the lookback"),
    ("one_time", "one paid order ever"),
    ("two_time", "two paid orders ever"),
    ("loyalist", "recency, frequency and monetary scores all 4 or 5"),
    ("under_performer", "spent less than half of what they spent in the year before the lookback"),
    ("seasonal", "paid orders in the same calendar month of different years"),
    ("at_risk", "recency score 1 or 2 with a frequency score of 3 or more"),
    ("promising", "recency score 4 or 5"),
    ("regular", "everyone else"),
]
SEGMENT_NAMES = [name for name, _rule in SEGMENTS]
# What the pages call each segment ("new": no paid order yet on the first date of a move).
SEGMENT_LABELS = {
    "inactive": "Inactive", "one_time": "One-time buyers", "two_time": "Two-time buyers",
    "loyalist": "Loyalists", "under_performer": "Spending less", "seasonal": "Seasonal",
    # Not "at risk": that is the at-risk list's name (customers with a reason, any segment).
    "at_risk": "Lapsing regulars", "promising": "Promising", "regular": "Regulars",
    "new": "New (no order yet)",
}
