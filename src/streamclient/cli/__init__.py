"""The ``streamclient`` command line.

Each subcommand lives in its own module of this package and defines
``register(subparsers)``, which adds its parser and sets ``handler`` (a function taking
the parsed arguments and returning an exit code) as a default.  ``main`` finds them with
pkgutil, so a new subcommand needs no edit elsewhere.
"""
