"""What metadata.csv reads back from a series' raw listing row beyond :class:`RemoteSeries`:
study description and date, manufacturer, analysis flag, data description URI.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from mirror.tcia.dates import to_date
from mirror.tcia.fields import first, to_str


@dataclass(frozen=True, slots=True)
class ListingExtras:
    """Listing fields beyond :class:`RemoteSeries`, read back from its ``raw`` record
    (for metadata.csv); every dialect's spelling is tried."""

    study_description: str | None
    study_date: date | None
    manufacturer: str | None
    third_party: str | None
    data_description_uri: str | None


def listing_extras(raw: Mapping[str, Any]) -> ListingExtras:
    return ListingExtras(
        study_description=to_str(first(raw, "StudyDesc", "StudyDescription",
                                        "Study Description")),
        study_date=to_date(first(raw, "StudyDate", "Study Date")),
        manufacturer=to_str(raw.get("Manufacturer")),
        third_party=to_str(first(raw, "ThirdPartyAnalysis", "3rd Party Analysis")),
        data_description_uri=to_str(first(raw, "DataDescriptionURI", "CollectionURI",
                                          "Data Description URI")),
    )
