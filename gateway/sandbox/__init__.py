"""Faithful simulators of the four vendor APIs, for the demo, the tests and the benchmarks."""

from gateway.sandbox.app import SANDBOX_CREDENTIALS, Sandbox, SandboxOptions, serve_sandbox
from gateway.sandbox.knobs import Knobs

__all__ = ["SANDBOX_CREDENTIALS", "Knobs", "Sandbox", "SandboxOptions", "serve_sandbox"]
