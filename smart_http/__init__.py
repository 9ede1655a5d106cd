"""The Git smart-HTTP wire protocol: a sans-IO core, synchronous drivers, one ASGI bridge.

Layers, from the bottom:
- ``pktline`` / ``sideband``: framing (pure functions and an incremental reader).
- ``requests_v0``, ``requests_v2``, ``requests_receive``: parse client requests into
  ``storage.model`` values; illegal input raises ``errors.RemoteProtocolError`` only.
- ``advertise``, ``responses``: turn values into bytes.
- ``upload_pack``, ``receive_pack``, ``discovery``: drivers that talk to a
  ``backend.GitRepository`` from a worker thread.
- ``asgi``: the only async module; streams bodies between ASGI and the drivers.
"""
