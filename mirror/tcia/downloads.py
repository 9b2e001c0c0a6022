"""The client's image endpoints: a series ZIP or one instance, streamed into a sink."""

from __future__ import annotations

from mirror.errors import UsageError
from mirror.tcia import streaming
from mirror.tcia.calls import Calls, Params
from mirror.tcia.streaming import Progress, Sink


class Downloads(Calls):
    """getImage, getImageWithMD5Hash and getSingleImage in the configured dialect."""

    async def download_image(self, series_uid: str, sink: Sink, *, md5: bool = False,
                             new_file_names: bool = False,
                             progress: Progress | None = None) -> int:
        """Stream the series ZIP into *sink* (sync or async ``write``); bytes written.

        *md5* asks for md5hashes.csv as the ZIP's last entry: on NBIA v4 through
        ``getImage?IncludeMD5=Yes`` (the ZIP starts with the collection's LICENSE), on
        NBIA v1 through getImageWithMD5Hash (no LICENSE). On v4 it also asks for
        NewFileNames=Yes: in that branch an image whose stored digest is NULL gets an empty
        md5hashes.csv field, where the default names cut the ZIP short before it.
        *progress* is called with the size of each chunk.
        """
        if md5 and not self.has_md5:
            raise UsageError(f"the {self.api} API has no getImageWithMD5Hash endpoint")
        include_md5 = md5 and self.api == "nbia-v4"
        canonical = "getImageWithMD5Hash" if md5 and not include_md5 else "getImage"
        params: dict[str, str | None] = {"SeriesInstanceUID": series_uid}
        if (new_file_names or include_md5) and canonical == "getImage" and self.api != "v3":
            params["NewFileNames"] = "Yes"
        if include_md5:
            params["IncludeMD5"] = "Yes"
        return await self._download(canonical, params, sink, progress)

    async def download_single_image(self, series_uid: str, sop_uid: str, sink: Sink,
                                    progress: Progress | None = None) -> int:
        """Stream one DICOM instance into *sink*; bytes written."""
        params = {"SeriesInstanceUID": series_uid, "SOPInstanceUID": sop_uid}
        return await self._download("getSingleImage", params, sink, progress)

    async def _download(self, canonical: str, params: Params, sink: Sink,
                        progress: Progress | None) -> int:
        wire, _, wire_params = self._request(canonical, params)
        return await streaming.download(self._transport, wire, self._url(canonical, wire),
                                        wire_params, sink, progress)
