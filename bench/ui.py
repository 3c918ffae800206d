"""Browser benchmark of the web UI: a 1,000-node run (a wide ``foreach``) against a 10-node run,
in the same sitting, in the same Chromium.

Run it with ``python bench/ui.py [--items 1000] [--repeat 3]`` (``make bench`` runs it). It
starts a real ``flowplane serve`` on SQLite with one worker, then for each run size:

* **live**: starts the run, opens its page at once and records every animation frame (the
  time between two ``requestAnimationFrame`` callbacks) until the page shows the run
  finished: the page's frame time while node states stream in over SSE. A page that froze
  would show it in ``max frame ms``;
* **first paint**: reopens the finished run's page ``--repeat`` times and measures the time
  from navigation to the graph drawn with its final states (``graph ms``), plus the
  browser's own first contentful paint.

It prints one table and the ratios 1,000-node / 10-node. No assertion: speed belongs here,
not in the tests (``tests/acceptance/test_ui.py`` proves the same pages work).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "acceptance"))
from browser_support import CHROMIUM
from serve_support import Serve, serving

WIDE = """name: bench-wide
inputs:
  type: object
  properties:
    items: {type: array, maxItems: 5000}
nodes:
  - id: each
    type: util.set
    foreach: "{{ input.items }}"
    max_parallel: 50
    params:
      value: "{{ item }}"
  - id: done
    type: util.set
    needs: [each]
    params:
      value: finished
"""
CHAIN = "name: bench-chain\nnodes:\n" + "".join(
    f"  - id: step{i}\n    type: util.set\n"
    + (f"    needs: [step{i - 1}]\n" if i else "")
    + f"    params:\n      value: {i}\n"
    for i in range(10)
)
FRAME_RECORDER = """() => {
  window.__frames = [];
  let last = performance.now();
  const tick = (now) => {
    window.__frames.push(now - last);
    last = now;
    window.__raf = requestAnimationFrame(tick);
  };
  window.__raf = requestAnimationFrame(tick);
}"""


def _create(c: httpx.Client, text: str) -> str:
    r = c.post("/v1/workflows", content=text, headers={"Content-Type": "application/yaml"})
    r.raise_for_status()
    workflow_id: str = r.json()["id"]
    return workflow_id


def _sign_in(page: Any, server: Serve) -> None:
    page.goto(f"{server.url}/")
    page.get_by_label("API key", exact=True).fill(server.key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Runs").wait_for()


def _wait_finished(page: Any, timeout_ms: int = 300_000) -> None:
    page.wait_for_function(
        "() => document.querySelector('[data-testid=run-status]')?.textContent === 'finished'"
        " && [...document.querySelectorAll('[data-node]')].every("
        "n => n.getAttribute('data-state') === 'finished')",
        timeout=timeout_ms,
    )


def live(page: Any, server: Serve, workflow_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Open a starting run's page and record its frames until it shows the run finished."""
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as c:
        r = c.post(f"/v1/workflows/{workflow_id}/runs", json={"input": payload})
        r.raise_for_status()
        run_id = r.json()["runId"]
    started = time.perf_counter()
    page.goto(f"{server.url}/#/runs/{run_id}")
    page.evaluate(FRAME_RECORDER)
    _wait_finished(page)
    elapsed = time.perf_counter() - started
    frames: list[float] = page.evaluate("cancelAnimationFrame(window.__raf), window.__frames")
    frames = frames[1:] or [0.0]
    ordered = sorted(frames)
    return {
        "run_id": run_id,
        "live s": elapsed,
        "frames": len(frames),
        "p50 frame ms": statistics.median(frames),
        "p95 frame ms": ordered[int(0.95 * (len(ordered) - 1))],
        "max frame ms": ordered[-1],
    }


def first_paint(page: Any, server: Serve, run_id: str, repeat: int) -> dict[str, float]:
    """Median time from navigation to the finished graph, and the browser's first paint."""
    graph, fcp = [], []
    for _ in range(repeat):
        page.goto("about:blank")
        started = time.perf_counter()
        page.goto(f"{server.url}/#/runs/{run_id}")
        _wait_finished(page)
        graph.append((time.perf_counter() - started) * 1000)
        paint = page.evaluate(
            "performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? 0"
        )
        fcp.append(float(paint))
    return {"graph ms": statistics.median(graph), "fcp ms": statistics.median(fcp)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1000, help="foreach width of the big run")
    parser.add_argument("--repeat", type=int, default=3, help="page loads per first-paint")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        sys.exit(f"{CHROMIUM} is missing: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as work:
        base = Path(work)
        with serving(base, f"sqlite:///{base / 'fp.db'}", "--workers", "1") as server:
            with httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as c:
                wide, chain = _create(c, WIDE), _create(c, CHAIN)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM), args=["--disable-dev-shm-usage"]
                )
                page = browser.new_page(viewport={"width": 1280, "height": 860})
                _sign_in(page, server)
                rows = {}
                for label, workflow_id, payload in (
                    ("10 nodes", chain, {}),
                    (f"{args.items} nodes", wide, {"items": list(range(args.items))}),
                ):
                    result = live(page, server, workflow_id, payload)
                    result.update(first_paint(page, server, result.pop("run_id"), args.repeat))
                    rows[label] = result
                browser.close()
    columns = list(next(iter(rows.values())))
    print(f"{'run':<12}" + "".join(f"{c:>14}" for c in columns))
    for label, row in rows.items():
        print(f"{label:<12}" + "".join(f"{row[c]:>14.1f}" for c in columns))
    small, big = rows["10 nodes"], rows[f"{args.items} nodes"]
    print(
        f"ratio {args.items}/10: graph first paint x{big['graph ms'] / small['graph ms']:.2f}, "
        f"p95 frame x{big['p95 frame ms'] / max(small['p95 frame ms'], 0.1):.2f}, "
        f"max frame {big['max frame ms']:.0f} ms vs {small['max frame ms']:.0f} ms"
    )


if __name__ == "__main__":
    main()
