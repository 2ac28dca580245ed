"""Releases, by job: ``publish`` (the publish protocol and writing the tables), ``versions`` (what changed
and the version that follows), ``statistics`` (counted while the tables are written), ``manifest``
(checksums, ``manifest.json``, ``datapackage.json``), ``notes`` (changelogs) and ``card`` (the data card
and report). Published releases are read through ``commentary.reader``.
"""
