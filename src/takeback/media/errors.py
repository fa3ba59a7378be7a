"""Named errors for media that cannot be hashed.

Each carries a one-line, human-readable reason (shown in the summary and written
to the hash list's error section) and a short machine-readable `code` so that
callers and tests can tell the cases apart without parsing prose.
"""

from __future__ import annotations


class MediaError(Exception):
    """A file could not be turned into pixels or frames."""

    code = "media-error"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotMedia(MediaError):
    """The content is not an image or video format we recognise."""

    code = "not-media"


class EmptyFile(MediaError):
    code = "empty-file"


class UnreadableFile(MediaError):
    """Permissions, a vanished file, an I/O error."""

    code = "unreadable"


class CorruptMedia(MediaError):
    """Truncated or damaged data the decoder cannot recover from."""

    code = "corrupt"


class TooLarge(MediaError):
    """Over a configured limit: pixels (decompression bombs), bytes or duration."""

    code = "too-large"


class NoVideoStream(MediaError):
    code = "no-video-stream"


class UnsupportedMedia(MediaError):
    """Recognised, but a variant we cannot decode (codec, bit depth, …)."""

    code = "unsupported"
