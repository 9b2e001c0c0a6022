"""The client's checksum endpoints: one image's MD5 (NBIA) and the MD5 hierarchy (NBIA v4)."""

from __future__ import annotations

from mirror.tcia import dialects, parsing
from mirror.tcia.calls import Calls


class Checksums(Calls):
    """What the server says the content hashes to, per image or per level."""

    async def get_md5_hash_for_image(self, sop_uid: str) -> str | None:
        """The server's MD5 of one instance (NBIA), or None where the dialect or the
        server has none (v3; an empty answer)."""
        if not self.dialect.supports(dialects.MD5_ENDPOINT):
            return None
        wire, method, params = self._request(dialects.MD5_ENDPOINT, {"SOPInstanceUID": sop_uid})
        url = self._url(dialects.MD5_ENDPOINT, wire)
        _, _, body = await self._transport.fetch(wire, method, url, params=params)
        return parsing.md5_text(body)

    @property
    def has_md5_hierarchy(self) -> bool:
        """True when the dialect has getMD5Hierarchy (NBIA v4 only)."""
        return self.dialect.supports("getMD5Hierarchy")

    async def md5_hierarchy(self, *, collection: str | None = None,
                            patient_id: str | None = None, study_uid: str | None = None,
                            series_uid: str | None = None) -> str:
        """The server's MD5 hierarchy hash of one level (NBIA v4 getMD5Hierarchy).

        Name one level: *series_uid*, *study_uid*, *patient_id* (which needs *collection*:
        the server filters patients by project) or *collection* alone. The answer is 32
        lowercase hex digits, or ``""`` when the server knows nothing (unknown UID, nothing
        visible, or no stored collection hash yet). A collection hash is cached by the
        server for up to a day: it can prove a change, never the absence of one.
        *collection* is sent only for the patient and collection levels (next to a study
        or series UID the server would answer the collection's hash instead).

        Raises UsageError on dialects without the endpoint (v3, nbia-v1; see
        :attr:`has_md5_hierarchy`), and ProtocolError when the body is not a hash.
        """
        canonical = "getMD5Hierarchy"
        form = dialects.md5_hierarchy_form(collection=collection, patient_id=patient_id,
                                           study_uid=study_uid, series_uid=series_uid)
        wire, method, params = self._request(canonical, form)
        url = self._url(canonical, wire)
        _, _, body = await self._transport.fetch(wire, method, url, data=params)
        return parsing.md5_hierarchy_text(body)
