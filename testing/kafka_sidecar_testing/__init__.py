"""The test harness of kafka-sidecar (the ``kafka-sidecar-testing`` distribution, ``testing/``).

A real Apache Kafka broker from Maven Central jars (:mod:`.broker`, secured: :mod:`.broker_security`),
its pytest fixtures (:mod:`.pytest_plugin`, a ``pytest11`` entry point; :mod:`.secure_fixtures`), the
ksqlDB test server (:mod:`.ksqldb`), a schema registry (:mod:`.registry`), an OAuth token endpoint, a
real HTTP backend for reactive consumers (:mod:`.backend`), a sidecar as a process (:mod:`.process`),
the secret leak scan and the fault-injection run. Never part of the runtime wheel or the image; helpers
for teams writing a plugin are :mod:`kafka_sidecar.testing`. See docs/test-infrastructure.md.
"""
