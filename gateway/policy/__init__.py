"""Policy: plain objects that turn an identity and a request into a decision, called by the router.

- `auth`: an `Authorization` header → an `Identity` (static tokens, JWT HS256/RS256, JWKS), or `AuthError`.
- `views`: which servers and tools an identity may see and call (`ToolPolicy`).
- `ratelimit`: token buckets per identity and per identity x tool (`RateLimiter`).
- `audit`: one JSON line per call, never secrets (`AuditLog`).

None of these modules knows about HTTP, sessions or event loops: they take values and an injected
clock, and return values, so each decision is testable on its own.
"""
