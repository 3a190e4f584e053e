"""The managers' pages (server-rendered, for the Managers group and superusers), a module each."""
