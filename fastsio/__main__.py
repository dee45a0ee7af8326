"""``python -m fastsio run module:io ...``: the same as the ``fastsio`` command."""

from fastsio.cli import console

if __name__ == "__main__":
    console()
