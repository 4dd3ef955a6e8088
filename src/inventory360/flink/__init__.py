"""The same pipeline as a PyFlink job (issue 5), kept outside the engine.

* :mod:`.settings` — the job's settings, read from the same YAML file as the engine's
  (its ``kafka:`` and ``flink:`` sections; everything else is the engine's ``Settings``).
* :mod:`.job` — the Flink SQL and the plan of the Python stages, generated from those
  settings (pure text: importing it needs no Flink).
* :mod:`.decode`, :mod:`.alerting`, :mod:`.projection` — what the job's Python workers run:
  the engine's decoders with dead letters, LOW/RECOVERED crossings from the snapshot
  changelog, idempotent Cassandra upserts. Standard library, orjson and the decoders only,
  so they import in both virtualenvs and are unit-tested here.
* :mod:`.runner` — runs a plan with the Flink virtualenv's Python
  (``services/flink/setup.sh``); :mod:`._pyflink_main` is the script it runs there.
* :mod:`.maintain` — Paimon maintenance procedures (compact, expire snapshots, tag).
* :mod:`.advise` — parallelism advice from Kafka consumer lag and throughput.
* :mod:`.bench` — the embedded engine against the job (``inv360 bench --engines``).

Nothing here imports ``pyflink`` outside :mod:`._pyflink_main`: that runs only in the Flink virtualenv.
"""
