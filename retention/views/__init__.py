"""The pages people use: the managers' (server-rendered, for the Managers group and superusers)
and the customers' (account.py, by signed links), a module each, with their helpers
(access.py, choice.py)."""
