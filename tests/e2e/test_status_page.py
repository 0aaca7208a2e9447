"""The status page, rendered by a real headless Chromium against a live gateway."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from mcp import Client

from tests.conftest import FIXTURE_SERVER, HubProcess

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

CONFIG = f"""
mcpServers:
  everything:
    command: ${{HARBOR_PYTHON}}
    args: ["{FIXTURE_SERVER}"]
  broken:
    command: /nonexistent/server-binary
gateway:
  host: 127.0.0.1
"""


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("Debian's chromium is missing: `make browser` installs it (make test does it for you)")
    return found


FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _headless(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=2000",
        *extra,
        url,
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=90)


async def test_status_page_shows_servers_calls_and_errors_in_a_real_browser(
    hub: type[HubProcess], tmp_path: Path
) -> None:
    h = hub(CONFIG, strict=False)
    async with Client(h.url + "/mcp", mode="legacy") as client:
        await client.call_tool("everything__echo", {"text": "for the status page"})
        await client.call_tool("everything__test_error_handling", {})
    dom = _headless(h.url + "/", tmp_path / "profile-dom", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert "<h1>Harbor gateway</h1>" in html
    assert 'id="servers"' in html and "everything" in html and "broken" in html
    assert 'class="state ready"' in html
    assert "/nonexistent/server-binary" in html  # the broken server's last error is shown
    assert 'id="calls"' in html and "echo" in html and "tool_error" in html
    shot = tmp_path / "status.png"
    snap = _headless(h.url + "/", tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1200,800")
    assert snap.returncode == 0, snap.stderr[-2000:]
    assert shot.stat().st_size > 5000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


CONSOLE = f"""
mcpServers:
  everything:
    command: ${{HARBOR_PYTHON}}
    args: ["{FIXTURE_SERVER}"]
  hidden:
    command: ${{HARBOR_PYTHON}}
    args: ["{FIXTURE_SERVER}"]
gateway:
  host: 127.0.0.1
  auth:
    tokens:
      - {{token: "${{ALICE_TOKEN}}", identity: alice, scopes: [analyst]}}
      - {{token: "${{OPS_TOKEN}}", identity: ops, scopes: ["harbor:admin"]}}
  policies:
    - {{scopes: [analyst], servers: ["everything"], tools: ["*"]}}
"""
CONSOLE_TOKENS = {"ALICE_TOKEN": "alice-token-0123456789", "OPS_TOKEN": "ops-token-0123456789abc"}


async def test_the_console_logs_in_with_a_token_and_shows_details_charts_and_errors(
    hub: type[HubProcess], tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    h = hub(CONSOLE, env=CONSOLE_TOKENS)
    import aiohttp

    from tests.e2e.rawclient import Streamable

    async with aiohttp.ClientSession() as http:
        alice = Streamable(http, h.url + "/mcp")
        alice.headers = {"authorization": f"Bearer {CONSOLE_TOKENS['ALICE_TOKEN']}"}
        await alice.initialize()
        await alice.call(1, "everything__echo", {"text": "for the console"})
        await alice.call(2, "everything__test_error_handling", {})
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=_chromium(), args=FLAGS)
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        response = await page.goto(h.url + "/")
        assert response is not None and response.status == 401 and await page.locator("#token").count() == 1
        await page.fill("#token", "wrong-token-0123456789")
        await page.click("button")
        assert "not valid here" in await page.inner_text("#login-error")
        await page.fill("#token", CONSOLE_TOKENS["ALICE_TOKEN"])
        await page.click("button")
        text = await page.inner_text("body")
        assert "signed in as alice" in text and "hidden" not in text  # her policy's servers only
        assert "This tool intentionally returns an error for testing" in text  # a tool error, with its message
        (cookie,) = [c for c in await context.cookies() if c["name"] == "harbor_console"]
        assert (
            cookie["httpOnly"]
            and cookie["sameSite"] == "Strict"
            and CONSOLE_TOKENS["ALICE_TOKEN"] not in cookie["value"]
        )
        assert await page.locator("#servers svg.chart").count() >= 2  # inline charts, no script
        assert await page.locator("script").count() == 0
        await page.click("text=Log out")
        assert await page.locator("#token").count() == 1  # logged out: the form again
        assert await page.goto(h.url + "/status/servers/everything") and await page.locator("#token").count() == 1
        await page.fill("#token", CONSOLE_TOKENS["OPS_TOKEN"])
        await page.click("button")  # back to the page asked for, as the admin
        assert await page.inner_text("#server-name") == "everything"
        detail = await page.inner_text("body")
        assert "Echoes its text" in detail or "echo" in detail  # tools with their descriptions
        assert "ready" in await page.inner_text("#history") and "starting" in await page.inner_text("#history")
        await page.goto(h.url + "/")
        overview = await page.inner_text("body")
        assert "hidden" in overview and "alice" in overview  # the admin sees every server and every call
        await page.screenshot(path=str(tmp_path / "console.png"), full_page=True)
        await browser.close()
    shot = (tmp_path / "console.png").read_bytes()
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 20_000


async def test_console_forms_refuse_cross_site_posts_and_a_missing_csrf_token(hub: type[HubProcess]) -> None:
    import aiohttp

    h = hub(CONSOLE, env=CONSOLE_TOKENS)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:  # unsafe: an IP host
        form = {"token": CONSOLE_TOKENS["OPS_TOKEN"], "next": "//evil.example/"}
        async with http.post(h.url + "/login", data=form, allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["location"] == "/"  # never redirected off the gateway
            assert "HttpOnly" in resp.headers["set-cookie"] and "SameSite=Strict" in resp.headers["set-cookie"]
        async with http.post(h.url + "/logout", data={"csrf": "guess"}, allow_redirects=False) as resp:
            assert resp.status == 403
        async with http.get(h.url + "/") as resp:
            assert resp.status == 200 and "signed in as <b>ops</b>" in await resp.text()  # still signed in
        async with http.post(h.url + "/login", data=form, headers={"origin": "http://127.0.0.1:1"}) as resp:
            assert resp.status == 403  # another origin (Guard lets loopback origins in; the form check does not)
