"""Accessibility in the browser tests: axe-core (vendored, tests/e2e/vendor/axe-core) runs on a page as it is
shown, and any violation of impact moderate or above fails the test. ``Tour`` visits a page at desktop
(1280x800) and phone (390x844) size: axe at both sizes and a full-page screenshot of each."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Error as PlaywrightError

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
BLOCKING = ("moderate", "serious", "critical")
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

# axe.run resolves with {violations: [{id, impact, help, nodes: [{target, html}]}]}; only what a report needs.
RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + '  ' + n.html.slice(0, 160)),
  }));
}"""


def axe_violations(page) -> list[dict]:
    """Every axe-core violation on the page as shown now (the context must bypass CSP: axe is injected inline)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    return page.evaluate(RUN_AXE)


def blocking(violations: list[dict]) -> list[dict]:
    return [v for v in violations if v.get("impact") in BLOCKING]


def report(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        lines.append(f"{v['impact']}: {v['id']} ({v['help']})")
        lines.extend(f"    {n}" for n in v["nodes"])
    return "\n".join(lines)


class Tour:
    """Checks and photographs every page it is told about, at both sizes, and keeps what it saw."""

    def __init__(self, page, shot, secrets: list[str] = ()):
        self.page, self.shot, self.secrets = page, shot, list(secrets)
        self.checked: list[str] = []  # "name@size" for every axe run

    def __call__(self, name: str) -> None:
        """Check and photograph the page as shown. A page that reloads itself meanwhile (a check finishing under
        a "checking" page) is checked again as it then is: the user sees that one next."""
        for attempt in range(3):
            try:
                return self._visit(name)
            except PlaywrightError as exc:
                if attempt == 2 or "context was destroyed" not in str(exc):
                    raise
                self.page.wait_for_load_state()

    def _visit(self, name: str) -> None:
        page = self.page
        page.wait_for_load_state()
        html = page.content()
        for secret in self.secrets:
            assert secret not in html, f"a private key appears in the HTML of {page.url} ({name})"
        size = page.viewport_size
        try:
            for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
                page.set_viewport_size(viewport)
                found = blocking(axe_violations(page))
                assert not found, f"axe-core on {name} ({label}, {page.url}):\n{report(found)}"
                self.shot(page, f"{name}-{label}")
                if f"{name}@{label}" not in self.checked:  # once, also when a reload made it check again
                    self.checked.append(f"{name}@{label}")
        finally:
            if size:
                page.set_viewport_size(size)


# What the focused element is and whether a sighted keyboard user can see it and where the focus is.
FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const r = el.getBoundingClientRect();
  const s = getComputedStyle(el);
  const ring = (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || (s.boxShadow && s.boxShadow !== 'none');
  return {
    tag: el.tagName.toLowerCase(), id: el.id, type: el.type || '', name: (el.getAttribute('aria-label') || el.innerText || el.value || '').trim().slice(0, 80),
    visible: r.width > 0 && r.height > 0 && s.visibility !== 'hidden', ring: !!ring,
  };
}"""


def tab_through(page, limit: int = 400) -> list[dict]:
    """Press Tab from the top of the page until the focus comes back round (or ``limit`` presses): every element
    reached, with whether it is visible and shows a focus ring."""
    page.evaluate("() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }")
    reached: list[dict] = []
    first = None
    for _ in range(limit):
        page.keyboard.press("Tab")
        now = page.evaluate(FOCUSED)
        if now is None:
            continue
        if not now["ring"]:  # Bootstrap fades the focus shadow in (.15 s): look again once it is drawn
            page.wait_for_timeout(300)
            now = page.evaluate(FOCUSED) or now
        key = (now["tag"], now["name"])
        if first is None:
            first = key
        elif key == first and len(reached) > 3:
            break
        reached.append(now)
    return reached
