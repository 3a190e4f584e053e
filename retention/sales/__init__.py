"""Sales: what the sales platform sends (customers, the catalogue, orders, memberships,
enrolments, support tickets), the cached order summaries, the change log, and the ingest
that checks and merges orders from CSV files and the API."""
