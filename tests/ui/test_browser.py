"""The web UI in a real browser: log in with a token, browse a repo, travel in time.

One server and one headless Chromium for the module. The repo gets three pushes:
C1 (README, src/app.py, docs/guide.md), C2 (app.py changed, guide.md renamed to
manual.md, two files whose names and contents are HTML/script payloads, a hostile commit
message), C3 (a binary file). The timeline between the first and second push must list
exactly C2's files. Screenshots go to tests/artifacts/ (ui-repo.png, ui-timeline.png).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest

from tests.helpers import Server, git, git_env, run_server
from tests.ui.browser import chromium, screenshot

HOSTILE_A = "<script>window.pwnedA=1<!--.html"
HOSTILE_B = "<img src=x onerror=window.pwnedB=1>.md"
HOSTILE_BODY = '<script>window.pwnedContent=1</script>\n<img src=x onerror="window.pwnedImg=1">\n'
HOSTILE_MSG = "<script>window.pwnedMsg=1</script> second"
GUIDE = "".join(f"Guide line {i}: how to use the thing.\n" for i in range(30))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("ui")
    with run_server(tmp) as srv:
        _info, token = srv.create_repo("acme", "site", description="Docs <b>and</b> code")
        env = git_env(srv.home)
        work = tmp / "work"
        git("init", "-q", "-b", "main", work, env=env)
        remote = srv.git_url("acme", "site", token)

        def commit_and_push(message: str) -> None:
            git("add", "-A", cwd=work, env=env)
            git("commit", "-q", "-m", message, cwd=work, env=env)
            git("push", "-q", remote, "main", cwd=work, env=env)

        (work / "src").mkdir()
        (work / "docs").mkdir()
        (work / "README.md").write_text("# Site\n")
        (work / "src" / "app.py").write_text("def hello():\n    return 'hi'\n")
        (work / "docs" / "guide.md").write_text(GUIDE)
        commit_and_push("first")
        (work / "src" / "app.py").write_text("def hello(name):\n    return f'hi {name}'\n")
        git("mv", "docs/guide.md", "docs/manual.md", cwd=work, env=env)
        (work / HOSTILE_A).write_text(HOSTILE_BODY)
        (work / HOSTILE_B).write_text(HOSTILE_BODY)
        commit_and_push(HOSTILE_MSG)
        (work / "logo.bin").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00" + bytes(range(256)))
        commit_and_push("third: binary")
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


def _by(kind: str) -> str:
    from selenium.webdriver.common.by import By

    return {"css": By.CSS_SELECTOR, "link": By.LINK_TEXT, "id": By.ID}[kind]


def _go(driver: Any, element: Any) -> None:
    """Click something that loads a new page, and wait until it has."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element(_by("css"), "html")
    element.click()
    WebDriverWait(driver, 15).until(expected_conditions.staleness_of(old))


def _no_payload_ran(driver: Any) -> None:
    fired = driver.execute_script(
        "return [window.pwnedA, window.pwnedB, window.pwnedContent, window.pwnedImg, window.pwnedMsg]"
        ".filter(function (x) { return x !== undefined; }).length"
    )
    assert fired == 0
    assert driver.find_elements(_by("css"), "main script, main img") == []


def test_login_browse_tree_and_file(site: Server, browser: Any) -> None:
    browser.get(site.base_url + "/ui/acme/site")
    assert "/ui/-/login" in browser.current_url  # not logged in yet
    browser.find_element(_by("id"), "token").send_keys(site.admin_token)
    _go(browser, browser.find_element(_by("css"), "button.primary"))
    assert browser.current_url.endswith("/ui/acme/site")
    assert browser.find_element(_by("css"), "h1").text == "acme/site"
    names = [a.text for a in browser.find_elements(_by("css"), "#tree a")]
    assert names == ["docs/", "src/", HOSTILE_B, HOSTILE_A, "README.md", "logo.bin"]
    assert browser.find_element(_by("css"), "#branches").text.splitlines()[1:] == ["main default"]
    clone = browser.find_element(_by("id"), "clone-url").get_attribute("value")
    assert clone == f"{site.base_url}/git/acme/site.git"
    assert "third: binary" in browser.find_element(_by("id"), "last-commit").text
    _no_payload_ran(browser)
    screenshot(browser, "ui-repo")

    _go(browser, browser.find_element(_by("link"), "src/"))
    _go(browser, browser.find_element(_by("link"), "app.py"))
    assert browser.find_element(_by("css"), "h1").text == "app.py"
    code = browser.find_element(_by("id"), "file")
    assert "def hello(name):" in code.text
    assert code.find_element(_by("css"), "span.k").text == "def"  # Pygments keyword
    _go(browser, browser.find_element(_by("link"), "site"))  # the path trail back to the root
    _go(browser, browser.find_element(_by("link"), "logo.bin"))
    assert "Binary file" in browser.find_element(_by("id"), "binary").text


def test_hostile_names_and_contents_render_as_text(site: Server, browser: Any) -> None:
    browser.get(site.base_url + "/ui/acme/site")
    _go(browser, browser.find_element(_by("link"), HOSTILE_A))
    assert browser.find_element(_by("css"), "h1").text == HOSTILE_A
    text = browser.find_element(_by("id"), "file").text
    assert "<script>window.pwnedContent=1</script>" in text
    assert '<img src=x onerror="window.pwnedImg=1">' in text
    _no_payload_ran(browser)
    browser.get(site.base_url + "/ui/acme/site/log")
    assert HOSTILE_MSG in browser.find_element(_by("id"), "log").text
    _no_payload_ran(browser)


def test_timeline_between_two_pushes(site: Server, browser: Any) -> None:
    from selenium.webdriver.support.ui import Select

    browser.get(site.base_url + "/ui/acme/site")
    _go(browser, browser.find_element(_by("id"), "timeline-link"))
    points = browser.find_elements(_by("css"), "svg.axis circle.pt")
    assert len(points) == 3
    assert all("git" in p.find_element(_by("css"), "title").get_attribute("textContent") for p in points)
    Select(browser.find_element(_by("id"), "from")).select_by_index(0)
    Select(browser.find_element(_by("id"), "to")).select_by_index(1)
    _go(browser, browser.find_element(_by("id"), "show-diff"))

    url = unquote(browser.current_url)
    assert "from=main@{" in url and "to=main@{" in url  # a shareable link to these instants
    files = {
        f.get_attribute("data-path"): f.get_attribute("data-status")
        for f in browser.find_elements(_by("css"), ".diffs .file")
    }
    assert files == {"src/app.py": "M", "docs/manual.md": "R", HOSTILE_A: "A", HOSTILE_B: "A"}
    names = [n.text for n in browser.find_elements(_by("css"), ".file-name")]
    assert "docs/guide.md → docs/manual.md" in names
    assert "+def hello(name):" in browser.find_element(_by("css"), ".file[data-path='src/app.py']").text
    _no_payload_ran(browser)
    screenshot(browser, "ui-timeline")

    _go(browser, browser.find_element(_by("id"), "diff-mode"))  # side by side
    assert browser.find_elements(_by("css"), "table.diff.split")
    shared = browser.current_url
    browser.get(shared)  # the same link opens the same comparison
    assert len(browser.find_elements(_by("css"), ".diffs .file")) == 4


def test_logout_ends_the_session(site: Server, browser: Any) -> None:
    browser.get(site.base_url + "/ui/acme/site")
    _go(browser, browser.find_element(_by("css"), "header .who button"))
    assert "/ui/-/login" in browser.current_url
    browser.get(site.base_url + "/ui/acme/site")
    assert "/ui/-/login" in browser.current_url
