"""musiqued: keeps a person's complete Last.fm listening history.

This package's ``__init__`` stays import-free: ``musiquectl`` imports ``musiqued.wire``
and must not pay for the daemon's dependencies.
"""

__version__ = "0.1.0"
