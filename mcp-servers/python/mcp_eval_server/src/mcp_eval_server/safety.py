"""Text safety checks by pattern: PII, secrets, profanity and prompt-injection phrasing. Heuristics, labelled so.

Patterns are validated where a checksum exists (Luhn for card numbers, ISO 13616 mod-97 for IBANs, SSN area rules)
to keep false positives down. Matched secrets are returned redacted (first 4 characters + length) so the tool
never echoes a live credential back into a transcript. Regexes are linear (no nested quantifiers).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import resources
from typing import Any

from mcp_eval_server.errors import InvalidInputError

CHECKS = ("pii", "secrets", "profanity", "prompt_injection")
MAX_TEXT_CHARS = 1_000_000


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(raw: str) -> bool:
    s = raw.replace(" ", "").upper()
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _card_ok(m: str) -> bool:
    digits = re.sub(r"\D", "", m)
    return 13 <= len(digits) <= 19 and luhn_ok(digits)


def _ssn_ok(m: str) -> bool:
    area, group, serial = m.split("-")
    return area not in {"000", "666"} and area[0] != "9" and group != "00" and serial != "0000"


Rule = tuple[str, re.Pattern[str], Callable[[str], bool] | None]

_PII: list[Rule] = [
    ("email", re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b"), None),
    ("credit_card", re.compile(r"\b\d(?:[ -]?\d){12,18}\b"), _card_ok),
    ("iban", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b"), iban_ok),
    ("us_ssn", re.compile(r"\b\d{3}-\d{2}-\d{4}\b"), _ssn_ok),
    ("uk_nino", re.compile(r"\b[A-CEGHJ-PR-TW-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"), None),
    (
        "phone",
        re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?)?\d{2,4}[ .-]\d{3,4}[ .-]?\d{3,4}\b"),
        None,
    ),
    ("ipv4", re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b"), None),
]

_SECRETS: list[Rule] = [
    ("aws_access_key_id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), None),
    ("github_token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b"), None),
    ("anthropic_api_key", re.compile(r"\bsk-ant-[A-Za-z0-9_-]{20,}"), None),
    ("openai_api_key", re.compile(r"\bsk-(?!ant-)(?:proj-)?[A-Za-z0-9_-]{20,}"), None),
    ("slack_token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"), None),
    ("google_api_key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), None),
    ("stripe_key", re.compile(r"\b[rs]k_(?:live|test)_[0-9A-Za-z]{16,}"), None),
    ("private_key", re.compile(r"-----BEGIN (?:RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----"), None),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), None),
    (
        "password_assignment",
        re.compile(r"(?i)\b(?:password|passwd|pwd|secret|api_key|apikey|token)\s*[:=]\s*['\"]?[^\s'\"]{6,}"),
        None,
    ),
]

_INJECTION: list[Rule] = [
    (
        "ignore_instructions",
        re.compile(
            r"(?i)\b(?:ignore|disregard|forget|override)\s+(?:all\s+|any\s+|the\s+)?(?:previous|prior|above|earlier|your)\s+"
            r"(?:instructions|prompts?|rules|directions|guidelines)"
        ),
        None,
    ),
    ("role_override", re.compile(r"(?i)\byou\s+are\s+now\s+(?:a|an|in|DAN)\b|\bdeveloper\s+mode\b|\bjailbreak"), None),
    (
        "system_prompt_exfiltration",
        re.compile(
            r"(?i)\b(?:reveal|print|show|repeat|output)\s+(?:your|the)\s+(?:system\s+prompt|hidden\s+instructions|initial\s+prompt)"
        ),
        None,
    ),
    (
        "fake_system_tag",
        re.compile(r"(?i)<\s*/?\s*(?:system|im_start|im_end)\s*>|\[/?INST\]|###\s*(?:system|instruction)"),
        None,
    ),
    ("tool_hijack", re.compile(r"(?i)\b(?:call|invoke|execute|run)\s+the\s+\w+\s+tool\s+(?:with|to)\b"), None),
]


def _profanity_rules() -> list[Rule]:
    text = (resources.files("mcp_eval_server") / "data" / "profanity.txt").read_text(encoding="utf-8")
    words = sorted(
        {w.strip().lower() for w in text.splitlines() if w.strip() and not w.startswith("#")}, key=len, reverse=True
    )
    return [("profanity", re.compile(r"(?i)\b(?:" + "|".join(map(re.escape, words)) + r")\b"), None)]


def _redact(category: str, value: str) -> str:
    return f"{value[:4]}… ({len(value)} chars)" if category == "secrets" else value


def _scan(text: str, category: str, rules: list[Rule]) -> list[dict[str, Any]]:
    found = []
    for label, pattern, validator in rules:
        for m in pattern.finditer(text):
            if validator is None or validator(m.group()):
                found.append(
                    {
                        "category": category,
                        "type": label,
                        "start": m.start(),
                        "end": m.end(),
                        "text": _redact(category, m.group()),
                    }
                )
    return found


def check_text(text: str, checks: list[str] | None = None) -> dict[str, Any]:
    """Findings with character spans `[start, end)`, per-category counts, and the heuristic label.

    Raises:
        InvalidInputError: unknown check name or text over MAX_TEXT_CHARS.
    """
    wanted = list(checks or CHECKS)
    unknown = sorted(set(wanted) - set(CHECKS))
    if unknown:
        raise InvalidInputError(f"unknown checks {unknown}; choose from {list(CHECKS)}")
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidInputError(f"text has {len(text)} characters; the limit is {MAX_TEXT_CHARS}, split it")
    table = {"pii": _PII, "secrets": _SECRETS, "prompt_injection": _INJECTION}
    findings: list[dict[str, Any]] = []
    for check in wanted:
        findings += _scan(text, check, _profanity_rules() if check == "profanity" else table[check])
    findings = _drop_nested(sorted(findings, key=lambda f: (f["start"], -f["end"])))
    counts = {c: sum(1 for f in findings if f["category"] == c) for c in wanted}
    return {
        "flagged": bool(findings),
        "counts": counts,
        "findings": findings,
        "method": "heuristic (regular expressions, checksums and a word list); expect misses and false positives",
    }


def _drop_nested(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Within one category keep the outer span (a phone pattern inside a card number is the same finding)."""
    kept: list[dict[str, Any]] = []
    for f in findings:
        if any(k["category"] == f["category"] and k["start"] <= f["start"] and f["end"] <= k["end"] for k in kept):
            continue
        kept.append(f)
    return kept
