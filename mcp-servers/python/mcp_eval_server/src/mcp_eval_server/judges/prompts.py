"""The exact prompts LLM judges receive, exposed as MCP prompts so users can read what the judge is asked.

Every template asks for one JSON object and states its shape; the parser in `llm.py` validates that shape and
sends one repair request when the reply does not match. Bias controls live here too: the pairwise template tells
the judge to ignore position and length, and the server additionally evaluates both orders.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

SYSTEM = (
    "You are a meticulous, impartial evaluator. Judge only what is asked, using only the material given. "
    "Reply with one JSON object and nothing else: no prose, no code fences."
)

SCORE = """Evaluate the RESPONSE against each criterion below.
{prompt_block}{context_block}{reference_block}
RESPONSE:
<<<
{response}
>>>

CRITERIA (score each on its own scale; integers only):
{criteria}

Return JSON exactly of this shape:
{{"scores": {{"<criterion name>": {{"reasoning": "<one or two sentences>", "score": <integer>}}, ...}}}}
Include every criterion name exactly as written. Give the reasoning before deciding the score."""

PAIRWISE = """Compare two responses to the same prompt.
PROMPT:
<<<
{prompt}
>>>

RESPONSE A:
<<<
{response_a}
>>>

RESPONSE B:
<<<
{response_b}
>>>

CRITERIA: {criteria}

Do not let the order of the responses, their length, or their style influence you; judge substance against the
criteria. Return JSON exactly of this shape:
{{"reasoning": "<two or three sentences>", "winner": "A" | "B" | "tie"}}"""

CLAIMS = """Split the TEXT into atomic factual claims: short standalone statements, each checkable on its own,
with pronouns resolved. Skip opinions, greetings and questions.
TEXT:
<<<
{text}
>>>

Return JSON exactly of this shape: {{"claims": ["<claim>", ...]}}"""

VERIFY = """For each numbered CLAIM decide whether the CONTEXT supports it.
"supported": the context states or directly implies it. "contradicted": the context states the opposite.
"unsupported": the context does not settle it. Use only the context, not your own knowledge.
CONTEXT:
<<<
{contexts}
>>>

CLAIMS:
{claims}

Return JSON exactly of this shape:
{{"verdicts": [{{"index": <claim number>, "reasoning": "<one sentence>",
  "verdict": "supported" | "contradicted" | "unsupported"}}, ...]}}
with one entry per claim."""

RELEVANCE = """Rate how directly and completely the ANSWER addresses the QUESTION (not whether it is true).
QUESTION:
<<<
{question}
>>>

ANSWER:
<<<
{answer}
>>>

Scale: 1 = ignores the question, 3 = partly addresses it, 5 = fully and directly addresses it.
Return JSON exactly of this shape: {{"reasoning": "<one sentence>", "score": <integer 1-5>}}"""

CONTEXT_USEFUL = """For each numbered CONTEXT passage decide whether it is useful for arriving at the REFERENCE
answer to the QUESTION.
QUESTION:
<<<
{question}
>>>

REFERENCE ANSWER:
<<<
{reference}
>>>

CONTEXTS:
{contexts}

Return JSON exactly of this shape:
{{"verdicts": [{{"index": <context number>, "useful": true | false}}, ...]}} with one entry per context."""

REPAIR = """Your previous reply could not be used: {error}
Reply again with only the JSON object in the shape requested, nothing else."""


def _block(label: str, text: str | None) -> str:
    return f"\n{label}:\n<<<\n{text}\n>>>\n" if text else ""


def render_score(
    response: str, criteria: Sequence[dict], prompt: str | None, context: str | None, reference: str | None
) -> str:
    """The scoring prompt; `criteria` items carry name, description, scale_min and scale_max."""
    lines = "\n".join(
        f"- {c['name']} ({c['scale_min']}-{c['scale_max']}): {c.get('description') or c['name']}" for c in criteria
    )
    return SCORE.format(
        prompt_block=_block("PROMPT", prompt),
        context_block=_block("CONTEXT", context),
        reference_block=_block("REFERENCE ANSWER", reference),
        response=response,
        criteria=lines,
    )


def render_pairwise(prompt: str, response_a: str, response_b: str, criteria: Sequence[str]) -> str:
    return PAIRWISE.format(prompt=prompt, response_a=response_a, response_b=response_b, criteria="; ".join(criteria))


def render_claims(text: str) -> str:
    return CLAIMS.format(text=text)


def _numbered(items: Sequence[str]) -> str:
    return "\n".join(f"{i}. {json.dumps(item, ensure_ascii=False)}" for i, item in enumerate(items, 1))


def render_verify(claims: Sequence[str], contexts: Sequence[str]) -> str:
    return VERIFY.format(contexts="\n---\n".join(contexts), claims=_numbered(claims))


def render_relevance(question: str, answer: str) -> str:
    return RELEVANCE.format(question=question, answer=answer)


def render_context_useful(question: str, reference: str, contexts: Sequence[str]) -> str:
    return CONTEXT_USEFUL.format(question=question, reference=reference, contexts=_numbered(contexts))
