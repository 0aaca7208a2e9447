"""`python -m sql_server` runs the stdio server."""

from sql_server.server import main

main()
