"""The aggregating gateway (`python -m gateway serve`): many servers docked behind one endpoint, under policy.

`hub` docks every configured server and owns reload; `docked` is one docked server and its cached lists;
`aggregate` (and `aggregate_modern` for 2026-07-28 requests) is the merged view; `merged` is its session table;
`metrics` and `console` are what operators see; `starter` is the config it runs with when given none.
"""
