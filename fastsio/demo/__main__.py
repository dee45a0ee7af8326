"""``python -m fastsio.demo [--host H] [--port P]``: start the chat demo."""

from __future__ import annotations

import argparse
import logging

from fastsio.demo import create_app


def main() -> None:
    parser = argparse.ArgumentParser(description="fastsio chat demo")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("fastsio.engine.ws").setLevel(logging.WARNING)
    create_app().run(args.host, args.port)  # prints the URL to open


if __name__ == "__main__":
    main()
