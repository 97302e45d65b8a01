"""axe-core (vendored from npm, MPL-2.0: vendor/axe-LICENSE.txt), the keyboard and the 320 px check."""

from __future__ import annotations

import re
from pathlib import Path

AXE_SOURCE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()
WCAG_22_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def path_of(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def axe_violations(page, exclude: tuple[str, ...] = ()) -> list[str]:
    """WCAG 2.2 AA violations on the page as it is now (injected over CDP: the page's CSP stays on).

    `exclude`: selectors of a third party's widget that is not ours to fix (Stripe's card element).
    """
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_SOURCE)
    return page.evaluate(
        """async ([tags, exclude]) => (await axe.run(exclude.length ? {exclude: exclude.map(s => [s])} : document,
                                                    {runOnly: {type: "tag", values: tags}})).violations
            .map(v => v.id + ": " + v.nodes.map(n => n.target.join(" ")).join(", "))""",
        [WCAG_22_AA, list(exclude)],
    )


def assert_accessible(page, label: str, exclude: tuple[str, ...] = ()) -> None:
    violations = axe_violations(page, exclude)
    assert not violations, f"{label}: {violations}"


def tab_to(page, selector: str, limit: int = 80) -> None:
    """Press Tab until the focused element matches `selector` (the keyboard-only path)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} is not reachable with Tab")


def assert_fits(page, width: int = 320) -> None:
    page.set_viewport_size({"width": width, "height": 800})
    overflow = page.evaluate("() => document.documentElement.scrollWidth")
    assert overflow <= width, f"{page.url} is {overflow} px wide at {width} px"
    page.set_viewport_size({"width": 1280, "height": 900})


def open_email_link(page, url: str) -> None:
    """Follow a single-use link as a person does: the GET shows a button, pressing it uses the link."""
    page.goto(page.base_url + path_of(url))
    assert_accessible(page, "open the portal")
    with page.expect_navigation():
        page.get_by_role("button", name="Open the portal").click()
