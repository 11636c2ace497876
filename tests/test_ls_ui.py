"""In a real browser: the pre-annotations show up pre-filled, an annotator submits, pull gets them.

Headless Chromium logs in to the test server's web UI, opens each task as an annotator would,
waits until the pre-annotated regions are drawn, presses Submit, and the pulled session carries
exactly the pushed labels. This catches what the API alone cannot: a region format the UI
does not draw (e.g. paragraph indexes as numbers) or a config the UI cannot render.
"""

from __future__ import annotations

import json
import time

import pytest

from ls_helpers import Browser, chromium_path, labels_by_id, login_cookies, make_session
from rupture_nlp.labelstudio import pull_project, push_sessions
from rupture_nlp.records import read_sessions
from rupture_nlp.schema import load_schema

pytestmark = pytest.mark.labelstudio

SUBMIT = "[...document.querySelectorAll('button')].find(b => b.textContent.trim() == 'Submit')"


def test_annotator_submits_the_preannotations_in_the_browser(ls_server, tmp_path):
    if chromium_path() is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    schema = load_schema()
    client = ls_server.client()
    session = make_session("ui-01", 14, seed=1, with_scores=True)
    rep = push_sessions(client, [session], "In the browser", schema, chunk=8, overlap=3, model_version="ui-test")
    tasks = sorted(client.sdk.tasks.list(project=rep.project_id, fields="all"), key=lambda t: t.id)
    assert len(tasks) == 2
    cookies = login_cookies(
        ls_server.url, ls_server.env["LABEL_STUDIO_USERNAME"], ls_server.env["LABEL_STUDIO_PASSWORD"]
    )
    browser = Browser(tmp_path / "chromium-profile")
    try:
        for task in tasks:
            pred = task.predictions[0]
            n_regions = len(pred["result"] if isinstance(pred, dict) else pred.result)
            assert n_regions
            browser.open(f"{ls_server.url}/projects/{rep.project_id}/data?task={task.id}", cookies, ls_server.url)
            # the annotation opens pre-filled: one highlight per predicted region, under the task's
            # title and the label groups. The page re-renders while it settles (on a busy machine the
            # panel can be briefly gone), so the text is read at the moment all of it is there.
            expected = [task.data["title"], "Withdrawal (client)", "repair/invite_discussion"]
            if task.data["context_before"]:
                expected.append("context · ")
            shown = " && ".join(f"t.includes({json.dumps(x)})" for x in expected)
            text = browser.wait_for(
                f"(() => {{ const t = document.body.innerText; return document.querySelectorAll('.htx-highlight')"
                f".length == {n_regions} && !!{SUBMIT} && {shown} ? t : '' }})()"
            )
            assert all(x in text for x in expected)
            # press Submit (again while the page is still settling: a click before it is ready is lost)
            deadline = time.monotonic() + 60
            while not list(client.sdk.annotations.list(id=task.id)):
                assert time.monotonic() < deadline, "the submitted annotation never reached the server"
                browser.js(f"(() => {{ const b = {SUBMIT}; if (b && !b.disabled) b.click(); return true }})()")
                time.sleep(1.5)
    except Exception:
        browser.screenshot(tmp_path / "failure.png")
        raise
    finally:
        browser.close()

    out = tmp_path / "pulled.jsonl"
    report = pull_project(client, "In the browser", out, schema)
    assert report.annotations == 2 and not report.unannotated_tasks
    assert labels_by_id(read_sessions(out)) == labels_by_id([session])
