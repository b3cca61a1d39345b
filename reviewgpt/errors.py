"""Typed errors with messages meant for the person using the tool (shown as-is in the UI)."""

from __future__ import annotations


class ReviewGPTError(Exception):
    """Base of every error this project raises on purpose; `str(e)` is the user-facing message."""


class PDFError(ReviewGPTError):
    """The uploaded file cannot be turned into paper text."""


class NotAPDFError(PDFError):
    pass


class CorruptPDFError(PDFError):
    pass


class EncryptedPDFError(PDFError):
    pass


class ScannedPDFError(PDFError):
    """Pages are images with no text layer."""


class EmptyPDFError(PDFError):
    pass


class PDFTooLargeError(PDFError):
    pass


class ConfigError(ReviewGPTError, ValueError):
    """A config file or key=value override that cannot be used (unknown key, wrong type); a ValueError
    too, so callers that catch ValueError keep working."""


class ModelLoadError(ReviewGPTError):
    """The local model or adapter could not be loaded (missing, gated, offline, out of memory)."""


class OpenAIConfigError(ReviewGPTError):
    """The OpenAI side is not configured (no key) or misconfigured."""


class OpenAIServiceError(ReviewGPTError):
    """The OpenAI-compatible service failed after retries; the message says why."""
