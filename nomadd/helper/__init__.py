"""Small helpers every layer may use (Nomad's ``helper/``): Go-style flags and durations, and the
:class:`~nomadd.helper.supervisor.Supervisor` that owns a component's background tasks.

They import nothing else from nomadd (docs/architecture.md §Layering), so the CLI, the agent and
the drivers can share them without depending on each other.
"""
