"""gitserver: a Git host in which every repository is an actor with its own SQLite file.

The runnable pieces: ``gitserver.cli`` (the ``gitserver`` command) and ``gitserver.app``
(the ASGI application). See docs/architecture.md for how the packages fit together.
"""
