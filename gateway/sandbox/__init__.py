"""Faithful simulators of the four vendor APIs, for the demo, the tests and the benchmarks."""

from gateway.sandbox.app import SANDBOX_CREDENTIALS, Sandbox, SandboxOptions

__all__ = ["SANDBOX_CREDENTIALS", "Sandbox", "SandboxOptions"]
