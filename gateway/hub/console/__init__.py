"""The status console at `/`: server-rendered HTML pages, inline SVG charts, a token login; no script, no build.

`activity` keeps each server's last hour per minute, `charts` draws it, `pages` renders the overview, a
server's detail page and the login form from the hub's snapshots, `logins` holds the browser sessions a login
creates. Every value that reaches a page is HTML-escaped (tool names, descriptions and errors come from
upstreams). The HTTP routes live in `gateway.app`.
"""
