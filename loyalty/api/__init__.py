"""The loyalty REST API, under /api/v1/loyalty/: accounts and their entries, adjustments,
rules (with a dry run), tiers, rewards, redemptions and referrals (urls.py)."""
