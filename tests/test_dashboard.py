"""/dashboard in a real headless Chromium (Debian's, driven by Playwright): the charts draw
the reports with data, a screenshot is written, and the page logs no errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.support import add_product, eventually, place_order

CHROMIUM = Path("/usr/bin/chromium")
SALES = """query { reports { salesTrend(from: "2020-06-01T00:00:00Z", to: "2020-06-15T00:00:00Z") { orders } } }"""

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (.ci/run installs it)"
    ),
]


@pytest.fixture
def june(admin) -> None:
    """Sales on five days of June 2020 (a window no other test uses), by two customers."""
    sku = f"DB-{datetime.now(UTC).strftime('%H%M%S%f')}"
    add_product(admin, sku, "12.00")
    for day, quantity, phone in ((2, 1, "01"), (3, 4, "02"), (5, 2, "01"), (8, 6, "02"), (9, 3, "01")):
        customer = {"name": f"Dashboard {phone}", "phone": f"+86 1370000{sku[-4:]}{phone}"}
        place_order(
            admin, [(sku, quantity, "12.00")], paid=True, customer=customer, placedAt=f"2020-06-0{day}T04:00:00Z"
        )
    eventually(lambda: sum(p["orders"] for p in admin(SALES)["reports"]["salesTrend"]) >= 5)


def test_the_dashboard_draws_every_chart_with_data(server, admin, june, tmp_path):
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="needs the playwright package (pip install -e '.[test]')"
    )
    assert httpx.get(f"{server}/dashboard").status_code == 401  # no token: a form asking for one
    problems: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(f"{server}/dashboard?token={admin.token}&from=2020-06-01&to=2020-06-15")
            page.wait_for_selector("body[data-ready]", timeout=20_000)
            assert page.get_attribute("body", "data-ready") == "true", page.text_content("#status")
            assert "token" not in page.url  # dropped from the address bar
            sales_path = page.get_attribute("#sales-chart svg path.line", "d") or ""
            assert sales_path.count("L") >= 4  # five days with sales: a line through five points
            assert page.locator("#forecast-chart svg polygon.band").count() == 1
            assert page.locator("#forecast-chart svg path.line").count() == 1
            # Nothing shipped: completion and cancellation have a value, the three shipment rates are null.
            assert page.locator("#kpi-chart svg rect").count() == 2
            assert page.locator("#segment-chart svg rect").count() >= 1
            # The one SKU sold 16 units in the window and nothing in the 14 days before: a top bar, none rising.
            assert page.locator("#top-chart svg rect").count() >= 1
            assert page.locator("#rising-list li").first.text_content() == "Nothing rising in this window."
            shot = tmp_path / "dashboard.png"
            page.screenshot(path=str(shot), full_page=True)
            if keep := __import__("os").environ.get("OMS_KEEP_SCREENSHOT"):
                page.screenshot(path=keep, full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
    assert problems == []
