"""Cluster mode: several nodes on one PostgreSQL database and one NATS server (``--cluster``).

* :mod:`.wire`: what nodes say to each other, and on which subjects.
* :mod:`.ports`: the message broker and the lease, as ``typing.Protocol``.
* :mod:`.directory`: which node holds which station's WebSocket, and which nodes are alive.
* :mod:`.routing`: a command to a station another node holds, by request/reply.
* :mod:`.lease`: the jobs one node runs for the whole cluster, while it holds the lease.
* :mod:`.node`: one node's part, wired together.

Nothing here is imported, and nothing of NATS is needed, unless ``--cluster`` is given.
"""
