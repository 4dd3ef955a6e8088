"""The dashboard in a real browser (Debian chromium driven by playwright), fed by a live pipeline.

Fails (never skips) without /usr/bin/chromium: run scripts/ensure-chromium.sh (make install does).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from inventory360.config import Settings
from inventory360.datagen import GeneratorSpec, TrafficGenerator
from inventory360.serve.runtime import Service, tailing_inputs

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TOKEN = "dashboard-test-token"
DOCS = Path(__file__).resolve().parents[2] / "docs"


def _delta(sku: str, wh: str, qty: int, eid: str) -> bytes:
    return orjson.dumps(
        {
            "event_id": eid,
            "sku_id": sku,
            "warehouse_id": wh,
            "available_delta": qty,
            "event_time": int(time.time() * 1000),
        }
    )


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    deltas, orders = tmp_path / "deltas.jsonl", tmp_path / "orders.jsonl"
    spec = GeneratorSpec(skus=300, warehouses=6, events=12_000, seed=7, start_ms=int(time.time() * 1000) - 600_000)
    with deltas.open("wb") as fd, orders.open("wb") as fo:
        for kind, msg in TrafficGenerator(spec).messages():
            (fd if kind == "deltas" else fo).write(msg + b"\n")
        fd.write(_delta("SKU-E2E", "WH-001", 100, "e2e-0") + b"\n")
    svc = Service(Settings(), tmp_path / "lake", tailing_inputs([deltas], [orders]), TOKEN, port=0, min_interval=0.05)
    svc.start()
    deadline = time.monotonic() + 30
    while svc.store.get("SKU-E2E", "WH-001") is None:
        assert svc.runner.is_alive(), svc.runner.error
        assert time.monotonic() < deadline, "pipeline did not commit the initial data"
        time.sleep(0.05)
    yield svc
    svc.stop()


def test_dashboard_follows_the_pipeline(service: Service, tmp_path: Path) -> None:
    assert CHROMIUM.exists(), "chromium is missing: run scripts/ensure-chromium.sh (apt-get install chromium)"
    from playwright.sync_api import expect, sync_playwright

    deltas = tmp_path / "deltas.jsonl"
    url = f"{service.server.url}/dashboard/#token={TOKEN}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            # Under the real Content-Security-Policy the page loads and renders its data...
            strict = browser.new_page()
            strict.goto(url)
            expect(strict.locator("#h-keys")).not_to_have_text("–", timeout=10_000)
            strict.close()
            # ...the rest bypasses it, because wait_for_function evaluates strings.
            page = browser.new_context(bypass_csp=True, viewport={"width": 1400, "height": 900}).new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            page.wait_for_function("document.getElementById('h-keys').textContent !== '–'", timeout=10_000)
            keys = service.store.status().keys
            assert page.text_content("#h-keys") == f"{keys:,}"
            assert page.locator("#warehouses tbody tr").count() == 6
            page.fill("#search", "SKU-E2E")
            page.uncheck("#low-only")
            row = page.locator('#stock tbody tr[data-key="SKU-E2E|WH-001"]')
            row.wait_for(timeout=5_000)
            assert row.locator("td").nth(2).text_content() == "100"
            before = int((page.text_content("#h-available") or "0").replace(",", ""))

            # Push events through the pipeline; the page must show the new numbers within 1 s.
            with deltas.open("ab") as f:
                f.write(_delta("SKU-E2E", "WH-001", 4_321, "e2e-1") + b"\n")
            t0 = time.monotonic()
            page.wait_for_function(
                """() => {
                    const r = document.querySelector('#stock tbody tr[data-key="SKU-E2E|WH-001"]');
                    return r && r.cells[2].textContent === '4,421';
                }""",
                timeout=1_000,
            )
            page.wait_for_function(
                f"document.getElementById('h-available').textContent === '{before + 4_321:,}'",
                timeout=max(1, int((1.0 - (time.monotonic() - t0)) * 1000)),
            )
            assert time.monotonic() - t0 < 1.0
            assert "live" in (page.text_content("#freshness-text") or "")

            # A crossing below safety stock appears in the live alert feed.
            with deltas.open("ab") as f:
                f.write(_delta("SKU-E2E", "WH-001", -4_420, "e2e-2") + b"\n")
            page.wait_for_function(
                "[...document.querySelectorAll('#alerts li')]"
                ".some(li => li.textContent.startsWith('LOWSKU-E2E @ WH-001'))",
                timeout=2_000,
            )

            # The table starts sorted by ATP ascending; a click on the header reverses it.
            page.fill("#search", "")
            page.check("#low-only")
            page.wait_for_function("document.querySelectorAll('#stock tbody tr').length > 1", timeout=5_000)
            atp_cells = page.locator("#stock tbody tr td:nth-child(5)")
            atps = [int(t.replace(",", "")) for t in atp_cells.all_text_contents()]
            assert atps == sorted(atps)
            page.click('th[data-sort="atp_qty"]')
            atps = [int(t.replace(",", "")) for t in atp_cells.all_text_contents()]
            assert atps == sorted(atps, reverse=True)
            page.click('th[data-sort="atp_qty"]')

            # Per-warehouse view: clicking a warehouse filters the table to it.
            page.click('#warehouses tbody tr[data-warehouse="WH-002"]')
            page.wait_for_function(
                "[...document.querySelectorAll('#stock tbody tr td:nth-child(2)')]"
                ".every(td => td.textContent === 'WH-002')",
                timeout=5_000,
            )
            page.select_option("#warehouse", "")
            page.wait_for_timeout(400)
            DOCS.mkdir(exist_ok=True)
            page.screenshot(path=str(DOCS / "dashboard.png"), full_page=False)

            # The freshness indicator turns red past 60 s.
            page.evaluate("state.committedAt = Date.now() / 1000 + state.offset - 61; tickFreshness()")
            assert "stale" in (page.get_attribute("#freshness", "class") or "")
            assert errors == []
        finally:
            browser.close()
