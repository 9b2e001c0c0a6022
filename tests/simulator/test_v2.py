"""NBIA v2 through HTTP: v1's answers for a Bearer token, the real server's answers without one."""

from __future__ import annotations

import json

from mirror.simulator.replies import SERVER_ERROR
from mirror.simulator.testing import SimulatorHandle
from tests.simulator.conftest import Raw, fetch


async def _bearer(sim: SimulatorHandle, url: str | None = None) -> dict[str, str]:
    raw = await fetch(url or sim.token_url, method="POST", data={
        "grant_type": "password", "username": "nbia_guest", "password": "",
        "client_id": "NBIA"})
    assert raw.status == 200, raw.body
    return {"Authorization": f"Bearer {json.loads(raw.body)['access_token']}"}


def _same(a: Raw, b: Raw) -> None:
    assert (a.status, a.body, a.headers.get("Content-Type")) == (
        b.status, b.body, b.headers.get("Content-Type"))


async def test_token_also_answers_under_services(simulator: SimulatorHandle) -> None:
    # keycloak/web.xml maps Jersey at /* and /services/*: nbiatoolkit posts to the latter.
    auth = await _bearer(simulator, simulator.url + "/nbia-api/services/oauth/token")
    raw = await fetch(simulator.base_url("nbia-v2") + "/getCollectionValues", headers=auth)
    assert (raw.status, raw.body) == (200, b'[{"Collection":"SIM-LUNG"}]')


async def test_metadata_with_a_token_is_v1s_answer(simulator: SimulatorHandle) -> None:
    auth = await _bearer(simulator)
    v1, v2 = simulator.base_url("nbia-v1"), simulator.base_url("nbia-v2")
    uid = next(iter(simulator.ground_truth()))
    for name, params in [("getSeries", {"Collection": "SIM-LUNG"}),
                         ("getSeries", {"Collection": "SIM-LUNG", "format": "csv"}),
                         ("getPatient", {}), ("getSeriesSize", {"SeriesInstanceUID": uid}),
                         ("getSeriesMetaData", {"SeriesInstanceUID": uid}),
                         ("getUpdatedSeries", {"fromDate": "01/01/2000"}),
                         ("NewPatientsInCollection", {"Collection": "SIM-LUNG",
                                                      "Date": "2000/01/01"})]:
        _same(await fetch(v2 + "/" + name, headers=auth, **params),
              await fetch(v1 + "/" + name, **params))
    rows = json.loads((await fetch(v2 + "/getSeries", headers=auth, Collection="SIM-LUNG")).body)
    assert {r["SeriesInstanceUID"] for r in rows} == set(simulator.ground_truth())
    assert rows[0]["TimeStamp"].endswith(".0")  # v1's Java Timestamp text, not v4's date
    # v1/v2 ignore a parameter they do not know (v4 would answer 400)
    _same(await fetch(v2 + "/getSeries", headers=auth, collection="x", Collection="SIM-LUNG"),
          await fetch(v1 + "/getSeries", Collection="SIM-LUNG"))
    missing = await fetch(v2 + "/getSeriesSize", headers=auth)
    assert (missing.status, missing.text) == (
        400, "A parameter, SeriesInstanceUID is required for this API call.")
    assert simulator.stats()["requests"]["nbia-v2:getSeries"] == 4


async def test_images_with_a_token(simulator: SimulatorHandle) -> None:
    auth = await _bearer(simulator)
    v1, v2 = simulator.base_url("nbia-v1"), simulator.base_url("nbia-v2")
    uid = next(iter(simulator.ground_truth()))
    for name in ("getImageWithMD5Hash", "getImage"):
        got = await fetch(v2 + "/" + name, headers=auth, SeriesInstanceUID=uid)
        _same(got, await fetch(v1 + "/" + name, SeriesInstanceUID=uid))
        assert got.status == 200 and got.body[:2] == b"PK"
    unknown = await fetch(v2 + "/getImageWithMD5Hash", headers=auth, SeriesInstanceUID="1.2.3")
    assert (unknown.status, unknown.text) == (
        400, "The user has not been granted the access to image with given SeriesInstanceUID,"
             "1.2.3. Please contact System Admin to resolve this issue.")
    assert simulator.stats()["series"][uid] == 4


async def test_without_a_header_image_handlers_fail_metadata_is_empty(
        simulator: SimulatorHandle) -> None:
    v2 = simulator.base_url("nbia-v2")
    uid = next(iter(simulator.ground_truth()))
    # CONFIRMED on the real server: v2/getImage, no token, no parameter -> 500, 48 bytes.
    bare = await fetch(v2 + "/getImage")
    assert (bare.status, bare.body) == (500, f"{SERVER_ERROR}\nnull".encode())
    assert len(bare.body) == 48 and bare.headers["Content-Type"].startswith("text/plain")
    # getImageWithMD5Hash checks its parameter before it asks for the user
    assert (await fetch(v2 + "/getImageWithMD5Hash")).status == 400
    assert (await fetch(v2 + "/getImageWithMD5Hash", SeriesInstanceUID=uid)).status == 500
    listing = await fetch(v2 + "/getSeries", Collection="SIM-LUNG")
    assert (listing.status, listing.body) == (200, b"")
    assert (await fetch(v2 + "/getSeriesMetaData", SeriesInstanceUID=uid)).status == 204


async def test_bad_and_expired_tokens_and_the_undefined_guest(simulator: SimulatorHandle) -> None:
    v2 = simulator.base_url("nbia-v2")
    uid = next(iter(simulator.ground_truth()))
    bad = {"Authorization": "Bearer nope"}
    image = await fetch(v2 + "/getImageWithMD5Hash", headers=bad, SeriesInstanceUID=uid)
    assert (image.status, image.body) == (401, b"")
    assert (await fetch(v2 + "/getM5HashForImage", headers=bad)).status == 401
    listing = await fetch(v2 + "/getSeries", headers=bad)
    assert (listing.status, listing.body) == (200, b"")
    auth = await _bearer(simulator)
    simulator.expire_tokens()
    expired = await fetch(v2 + "/getImage", headers=auth, SeriesInstanceUID=uid)
    assert expired.status == 401
    # getData.getUserName: "Bearer undefined" is the guest, who sees public collections
    guest = await fetch(v2 + "/getSeries", headers={"Authorization": "Bearer undefined"})
    assert guest.status == 200 and len(json.loads(guest.body)) == len(simulator.ground_truth())


async def test_expire_token_fault_reaches_v2(simulator: SimulatorHandle) -> None:
    auth = await _bearer(simulator)
    uid = next(iter(simulator.ground_truth()))
    simulator.add_fault("getImageWithMD5Hash", "expire_token", count=1)
    url = simulator.base_url("nbia-v2") + "/getImageWithMD5Hash"
    assert (await fetch(url, headers=auth, SeriesInstanceUID=uid)).status == 401
    assert (await fetch(url, headers=await _bearer(simulator),
                        SeriesInstanceUID=uid)).status == 200
