"""Which text encoding a file or download is in: UTF-8 when it decodes as such, else charset-normalizer's guess.

Contract: `detect(sample)` returns `(codec, detected)`: `utf-8` (or `utf-8-sig` with a byte-order
mark, `utf-16` with its BOM) when the bytes are valid UTF-8, otherwise the best candidate of
charset-normalizer restricted to the encodings tabular files are written in, with `detected=True`
so the caller reports it as a guess. Among equally plausible single-byte Latin candidates the
Windows-1252 superset of Latin-1 wins (the encoding spreadsheet exports use), because
charset-normalizer ranks cp1250 first on short Western text, which would turn `è` into `č` (the
price: Central European text that scores the same is read as cp1252 — the warning says how to override).
`has_bytes(frame)` finds columns whose values are raw bytes — what a reader returns for text it could
not decode — so a load never hands such values to a client. No MCP import, no file access.
"""

from __future__ import annotations

import codecs

import pandas as pd

SAMPLE_BYTES = 1 << 20
CANDIDATES = [
    "utf_8", "cp1252", "latin_1", "iso8859_15", "cp1250", "iso8859_2", "cp1251", "koi8_r", "cp1253", "cp1254",
    "cp1257", "utf_16", "shift_jis", "euc_jp", "gb18030", "big5", "euc_kr", "mac_roman",
]  # fmt: skip
_WESTERN = {"cp1252", "latin_1", "iso8859_15", "cp1250", "iso8859_2", "mac_roman"}


class UndetectableEncodingError(ValueError):
    """No candidate encoding decodes the bytes plausibly."""


def _valid_utf8(sample: bytes, truncated: bool) -> bool:
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A sample cut inside a multi-byte character is still UTF-8.
        return truncated and exc.start >= len(sample) - 3 and exc.reason == "unexpected end of data"
    return True


def detect(sample: bytes, truncated: bool = False) -> tuple[str, bool]:
    """(codec name, whether it was guessed) for a byte sample; `truncated` = the sample is a prefix.

    Raises:
        UndetectableEncodingError: no candidate fits; the caller asks for an explicit `encoding`.
    """
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", False
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", False
    if _valid_utf8(sample, truncated):
        return "utf-8", False
    from charset_normalizer import from_bytes  # loads on the first non-UTF-8 file only

    matches = from_bytes(sample, cp_isolation=CANDIDATES)
    best = matches.best()
    if best is None:
        raise UndetectableEncodingError("no candidate encoding decodes these bytes")
    if best.encoding in _WESTERN:
        # Candidates that decode to the same text are merged into `could_be_from_charset`.
        if "cp1252" in best.could_be_from_charset or any(
            m.encoding == "cp1252" and m.chaos <= best.chaos + 0.05 and m.coherence >= best.coherence - 0.1
            for m in matches
        ):
            return "cp1252", True
    return best.encoding.replace("_", "-"), True


def has_bytes(frame: pd.DataFrame) -> list[str]:
    """Columns holding raw `bytes` values (undecoded text)."""
    out = []
    for name in frame.columns:
        col = frame[name]
        if col.dtype == object:
            head = col.dropna().head(1000)
            if any(isinstance(v, bytes | bytearray) for v in head):
                out.append(str(name))
    return out
