"""``python -m streamclient``: the same command line as the ``streamclient`` script."""

from streamclient.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
