"""Browser tests: Playwright drives Debian's Chromium (/usr/bin/chromium) against the live server.

Nothing is downloaded: `make browser` installs Chromium with apt, and Playwright
is told where it is. The browser starts once per session; each test gets a
fresh context (its own cookies), so a login never leaks into the next test.
"""

import os
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests may run as root in a container
    "--disable-gpu",
    # No calls home: the tests see only the live server.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.hookimpl(trylast=True)  # after pytest-django's own ordering
def pytest_collection_modifyitems(config, items):
    """Run the browser tests after every other test of the session.

    From the browser's start to the end of the session, Playwright's event loop
    is marked as running in the main thread (see `browser`). Running these tests
    last keeps that loop, and the Django check it forces us to switch off, away
    from the rest of the suite. The sort is stable, so pytest-django's order
    (database tests, then transactional ones, then the rest) holds otherwise.
    """
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture(scope="session")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium).")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an asyncio event loop in this thread (in a
    # greenlet) and leaves it marked as running until stop(). Django then sees
    # "an async context" and raises SynchronousOnlyOperation on every database
    # call the tests make in this thread (factories, refresh_from_db). The calls
    # are in fact synchronous and never run on that loop, so the check is
    # switched off for as long as Playwright runs, and put back afterwards.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def csp_violations(messages: list[str]) -> list[str]:
    return [text for text in messages if "Content Security Policy" in text]


@pytest.fixture
def page(browser):
    """A page in a fresh browser context, the size of a laptop screen.

    Every browser test also checks the Content-Security-Policy: Chromium logs each thing
    the policy blocked (an inline script, a style, a frame) to the console, and a test
    whose pages logged one fails.
    """
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    # Fail fast on a missing element instead of Playwright's 30 s default.
    context.set_default_timeout(10_000)
    console: list[str] = []
    context.on("console", lambda message: console.append(message.text))
    page = context.new_page()
    page.console_messages_seen = console
    yield page
    context.close()
    if blocked := csp_violations(console):
        pytest.fail("the Content-Security-Policy blocked:\n" + "\n".join(blocked))


AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"


def serious_accessibility_problems(page) -> list[str]:
    """Run axe-core (from the npm registry, injected into the page) against WCAG 2.1 A and AA;
    return the serious and critical violations, each with the elements it found."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci` (make test does).")
    # Evaluated through the driver, not added as an inline <script>: the pages' policy
    # refuses inline scripts, and a test tool is no reason to loosen it.
    page.evaluate(AXE.read_text())
    result = page.evaluate(
        "() => axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})")
    return [f"{v['id']} ({v['impact']}): {v['help']}: "
            + "; ".join(node["target"][0] for node in v["nodes"][:5])
            for v in result["violations"] if v["impact"] in ("serious", "critical")]
