"""The same pipeline as a PyFlink SQL job (issue 5), kept outside the engine.

* :mod:`.settings` — the job's settings, read from the same YAML file as the engine's
  (its ``kafka:`` and ``flink:`` sections; everything else is the engine's ``Settings``).
* :mod:`.job` — the Flink SQL text, generated from those settings (pure text: importing it
  needs no Flink).
* :mod:`.runner` — runs a generated plan with the Flink virtualenv's Python
  (``services/flink/setup.sh``); :mod:`._pyflink_main` is the script it runs there.
* :mod:`.maintain` — Paimon maintenance procedures (compact, expire snapshots, tag).
* :mod:`.advise` — parallelism advice from Kafka consumer lag and throughput.

Nothing here imports ``pyflink``: that happens only inside the Flink virtualenv.
"""
