"""The manage page's invitation sheets (printable QR codes with the code in words, or CSV) and
its export of the ballot log as one archive that `litestar polls audit` recounts."""

from __future__ import annotations

import csv
import gzip
import io
import re
import tarfile
from pathlib import Path

import httpx

from app.ballot_log.audit import audit
from app.ballot_log.audit_source import resolve
from tests.helpers import Voter, admin_headers, create_poll, send_vote

HTML = {"accept": "text/html,*/*;q=0.8"}


async def _managed_poll(client: httpx.AsyncClient, eligibility: str = "invite") -> tuple[dict, str]:
    poll = await create_poll(
        client, question="Lunch?", options=[{"id": "soup", "label": "Soup"}, "Salad"], eligibility=eligibility
    )
    return poll, poll["manage_url"].split("#key=", 1)[1]


async def test_the_manage_page_of_an_invite_poll_offers_invitations(client):
    invite, _ = await _managed_poll(client)
    open_poll, _ = await _managed_poll(client, "anyone")

    assert 'id="invitations-form"' in (await client.get(f"/polls/{invite['id']}/manage")).text
    assert 'id="invitations-form"' not in (await client.get(f"/polls/{open_poll['id']}/manage")).text
    assert f'href="/polls/{invite["id"]}/ballot-log.tar.gz"' in (await client.get(f"/polls/{invite['id']}/manage")).text


async def test_an_invitation_sheet_shows_each_code_as_a_qr_code_a_link_and_in_words(client):
    poll, token = await _managed_poll(client)

    sheet = await client.post(
        f"/polls/{poll['id']}/manage/invitations", data={"manage_token": token, "count": "3", "format": "sheet"}
    )

    assert sheet.status_code == 201
    assert sheet.headers["content-type"].startswith("text/html")
    assert sheet.headers["cache-control"] == "no-store"
    links = re.findall(r'<p class="invitation-link">([^<]+)</p>', sheet.text)
    words = re.findall(r'<p class="invitation-code"><code>([^<]+)</code>', sheet.text)
    assert len(links) == len(words) == sheet.text.count("<svg") == 3
    for link, printed in zip(links, words, strict=True):
        assert link.startswith(f"{poll['url']}#invite=")
        assert printed.replace(" ", "") == link.split("#invite=")[1]
        assert re.fullmatch(r"(\S{4} ){5}\S{2}", printed)  # in groups a person can copy
    # A code as printed votes without JavaScript.
    page = (await client.get(f"/polls/{poll['id']}")).text
    form_token = re.search(r'name="form_token" value="([^"]+)"', page)[1]  # type: ignore[index]
    voted = await client.post(
        f"/polls/{poll['id']}", data={"form_token": form_token, "option": "soup", "invitation": words[0]}
    )
    assert voted.status_code == 201, voted.text


async def test_invitations_as_csv_for_a_mail_merge(client):
    poll, token = await _managed_poll(client)

    answer = await client.post(
        f"/polls/{poll['id']}/manage/invitations", data={"manage_token": token, "count": "250", "format": "csv"}
    )

    assert answer.status_code == 201
    assert answer.headers["content-type"].startswith("text/csv")
    assert f'filename="{poll["id"]}-invitations.csv"' in answer.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0] == ["poll_id", "code", "url"]
    assert len(rows) == 251
    assert all(url == f"{poll['url']}#invite={code}" for _, code, url in rows[1:])


async def test_invitations_need_the_polls_manage_key_and_a_sensible_count(client):
    poll, token = await _managed_poll(client)
    other, other_token = await _managed_poll(client)
    open_poll, open_token = await _managed_poll(client, "anyone")
    url = f"/polls/{poll['id']}/manage/invitations"

    wrong = await client.post(url, data={"manage_token": other_token, "count": "3"}, headers=HTML)
    too_many = await client.post(url, data={"manage_token": token, "count": "201", "format": "sheet"}, headers=HTML)
    not_invite = await client.post(
        f"/polls/{open_poll['id']}/manage/invitations", data={"manage_token": open_token, "count": "3"}, headers=HTML
    )

    assert [r.status_code for r in (wrong, too_many, not_invite)] == [403, 400, 400]
    for refused in (wrong, too_many, not_invite):
        assert refused.headers["content-type"].startswith("text/html")  # words for a person
    assert "Ask for 1 to 200 invitations" in too_many.text
    assert other["id"] != poll["id"]


async def test_the_ballot_log_archive_recounts_to_the_results(client, tmp_path: Path):
    poll, _ = await _managed_poll(client, "anyone")
    assert (await client.get(f"/polls/{poll['id']}/ballot-log.tar.gz", headers=HTML)).status_code == 404
    for option in ("soup", "salad", "soup"):
        assert (await send_vote(client, Voter().vote(poll["id"], option))).status_code == 201
    await client.app.state.log_integrator.run_once()

    archive = await client.get(f"/polls/{poll['id']}/ballot-log.tar.gz")
    head = await client.head(f"/polls/{poll['id']}/ballot-log.tar.gz")

    assert archive.status_code == head.status_code == 200
    assert archive.headers["content-type"] == "application/gzip"
    assert "content-encoding" not in archive.headers  # the archive itself is the gzip
    assert head.content == b""
    with tarfile.open(fileobj=io.BytesIO(archive.content), mode="r:gz") as tar:
        tar.extractall(tmp_path, filter="data")
    folder = tmp_path / f"{poll['id']}-ballot-log"
    assert (folder / "checkpoint").exists()
    target = resolve(str(folder), [])
    report = audit(target.log, target.verifiers, target.poll, None)
    assert dict(report.tally) == {"soup": 2, "salad": 1}
    assert gzip.decompress(archive.content)[-1024:] == b"\0" * 1024  # a complete tar
    assert admin_headers()  # the archive needs no credentials: the log is public
