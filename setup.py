"""The optional C extensions (everything else is in pyproject.toml).

Each one has a pure-Python twin, so a machine without a C compiler still installs a
working streamclient: a failed build is a warning, not an error.
"""

from setuptools import Extension, setup

_FLAGS = ["-O2", "-std=c11", "-Wall", "-Wno-missing-field-initializers"]

setup(ext_modules=[
    Extension("streamclient.protocol.records._cwriter",
              ["src/streamclient/protocol/records/_cwriter.c"],
              depends=["src/streamclient/protocol/records/_cwriter.h"],
              extra_compile_args=_FLAGS, optional=True),
    Extension("streamclient.producer._cfastpath",
              ["src/streamclient/producer/_cfastpath.c"],
              depends=["src/streamclient/protocol/records/_cwriter.h"],
              extra_compile_args=_FLAGS, optional=True),
    Extension("streamclient.consumer._cdecode", ["src/streamclient/consumer/_cdecode.c"],
              extra_compile_args=_FLAGS, optional=True),
])
