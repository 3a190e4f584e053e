"""Attacks from the outside review, each refused, and what a legitimate user still gets."""

import os
import subprocess
import sys


def start(code: str = "import django; django.setup()", **environment) -> subprocess.CompletedProcess:
    """Run `code` in a fresh Python with the application's settings and `environment` set
    (how a server starts: settings are read once, at start-up)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "retention.settings", **environment}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60)
