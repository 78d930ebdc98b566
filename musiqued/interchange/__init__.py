"""Other services' listening files, read and written: the storage-free part of file imports
and exports.

A layer beside ``upstream``: it imports only ``musiqued.models``, ``musiqued.errors`` and
libraries, and never opens a path (the daemon gets open files from its clients).

- ``formats``: ``detect(name, first_bytes)`` and ``read(format, file, name)``, which yields
  an ``Entry`` per entry of the file: a ``Play``, a ``Skipped`` entry with its reason, or an
  ``Unreadable`` one with where and why (``entries``);
- one reader per format: ``spotify``, ``listenbrainz``, ``maloja``, ``lastfm_csv``,
  ``scrobbler_log``; each streams, in constant memory;
- ``matching``: when a play is a listen already stored, and duplicates within a file;
- ``writers``: ListenBrainz JSON lines and Maloja's export, written a listen at a time.
"""
