"""What the data loaders raise."""


class DatasetError(ValueError):
    """A data file is missing, malformed, or inconsistent with its partner file."""


class DownloadError(DatasetError):
    """No mirror delivered a file whose sha256 matched the pinned one."""
