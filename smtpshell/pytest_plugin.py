"""pytest plugin: transcript files become test items (filled in by the transcripts work)."""

from __future__ import annotations
