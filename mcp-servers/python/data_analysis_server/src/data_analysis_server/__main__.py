"""`python -m data_analysis_server` runs the stdio server."""

from data_analysis_server.server import main

main()
