"""House rules that can be checked mechanically: domain modules never import `mcp`; no print in the package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "mcp_eval_server"
DOMAIN = [
    "agents",
    "agreement",
    "calibration",
    "comparison",
    "config",
    "error_rates",
    "errors",
    "inputs",
    "judgments",
    "metrics",
    "rag",
    "result_warnings",
    "results",
    "runs",
    "safety",
    "significance",
    "squad",
    "store",
    "strict_arguments",
    "translation",
    "judges.base",
    "judges.heuristic",
    "judges.llm",
    "judges.prompts",
    "judges.providers",
    "judges.registry",
    "judges.sampling",
]


def test_domain_modules_do_not_load_mcp() -> None:
    code = (
        "import sys\n"
        + "".join(f"import mcp_eval_server.{m}\n" for m in DOMAIN)
        + "loaded = sorted(m for m in sys.modules if m == 'mcp' or m.startswith('mcp.'))\n"
        + "print(loaded)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_no_print_calls_in_the_package() -> None:
    offenders = [p.name for p in SRC.rglob("*.py") if "print(" in p.read_text(encoding="utf-8")]
    assert offenders == []


def test_rubrics_and_word_list_ship_inside_the_package() -> None:
    assert len(list((SRC / "rubrics").glob("*.json"))) >= 5
    assert (SRC / "data" / "profanity.txt").is_file()
