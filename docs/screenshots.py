"""Take the screenshots of the managers' metrics page that the README shows.

    .venv/bin/python docs/screenshots.py [--out docs] [--prefix metrics]

Seeds the demo data into a fresh SQLite file (as `make run` does), runs the nightly
pipeline, serves the application on a free port, logs in as the demo manager with
Debian's Chromium (Playwright) and saves /metrics/ at a laptop's width
(1366 px) and a phone's (390 px), the first --screens screen heights of it:
PREFIX-laptop.png and PREFIX-phone.png in --out.
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs"))
    parser.add_argument("--prefix", default="metrics")
    parser.add_argument("--screens", type=int, default=2,
                        help="how many screen heights from the top to keep")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="screenshots-"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "DEBUG": "1", "RETENTION_VAR_DIR": str(folder),
           "DATABASE_URL": f"sqlite:///{folder / 'retention.sqlite3'}",
           "SITE_URL": f"http://127.0.0.1:{port}"}
    env.pop("CELERY_BROKER_URL", None)

    def manage(*command):
        subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL)

    manage("migrate", "--noinput")
    manage("seed_demo", "--if-empty")
    manage("run_nightly")
    manage("create_manager", "--url", env["SITE_URL"] + "/")
    password = (folder / "manager-password.txt").read_text().strip()
    server = subprocess.Popen([sys.executable, "manage.py", "runserver", "--noreload",
                               f"127.0.0.1:{port}"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                 args=["--no-sandbox", "--disable-gpu"])
            for name, viewport, mobile in (("laptop", {"width": 1366, "height": 768}, False),
                                           ("phone", {"width": 390, "height": 844}, True)):
                context = browser.new_context(viewport=viewport, is_mobile=mobile,
                                              device_scale_factor=1)
                page = context.new_page()
                page.goto(f"{env['SITE_URL']}/admin/login/?next=/metrics/")
                page.get_by_label("Username").fill("manager")
                page.get_by_label("Password").fill(password)
                page.get_by_role("button", name="Log in").click()
                page.wait_for_url("**/metrics/")
                page.wait_for_load_state("networkidle")
                target = Path(args.out) / f"{args.prefix}-{name}.png"
                height = min(viewport["height"] * args.screens,
                             page.evaluate("() => document.documentElement.scrollHeight"))
                page.screenshot(path=str(target), full_page=True,
                                clip={"x": 0, "y": 0, "width": viewport["width"],
                                      "height": height})
                print(target)
                context.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
