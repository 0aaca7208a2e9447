"""`python -m gateway.connect URL`: the same command as `python -m gateway connect` and `harbor-connect`."""

from gateway.connect.cli import main

main()
