"""Watching the neurons and the reference server: Prometheus metrics, a progress watchdog behind
``/healthz``, and the validator's status page, served from a thread of their own on an opt-in port
(``--metrics.port``), so that they answer even while the neuron's event loop is stuck."""
