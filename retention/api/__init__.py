"""The REST API under /api/v1/: a module per resource family, each with its serializers and
filters beside its views, for the sales platform (token) and staff (session)."""
