"""`python -m gateway.translate`."""

from gateway.translate.cli import main

if __name__ == "__main__":
    main()
