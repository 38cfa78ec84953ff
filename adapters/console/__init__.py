"""The console surface: a text backend for the demo and for tests."""

from adapters.console.adapter import Console, ConsoleTransport, Screen

__all__ = ["Console", "ConsoleTransport", "Screen"]
