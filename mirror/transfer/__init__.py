"""Downloads to staging: hash while streaming, extract series ZIPs safely, commit atomically.

The public names live here; :mod:`.sink`, :mod:`.zipcheck`, :mod:`.extract` and
:mod:`.commit` hold the code.
"""

from mirror.archive.verify import ExtractedInstance
from mirror.transfer.commit import (
    clear_staging,
    commit_series_dir,
    commit_series_dirs,
    link_or_copy,
)
from mirror.transfer.extract import extract_series_zip, store_single_instance
from mirror.transfer.license import license_path, store_license
from mirror.transfer.sink import HashingFile
from mirror.transfer.zipcheck import ExpectedSeries, ExtractLimits, ExtractResult

__all__ = ["ExpectedSeries", "ExtractLimits", "ExtractResult", "ExtractedInstance",
           "HashingFile", "clear_staging", "commit_series_dir", "commit_series_dirs",
           "extract_series_zip",
           "license_path", "link_or_copy", "store_license", "store_single_instance"]
