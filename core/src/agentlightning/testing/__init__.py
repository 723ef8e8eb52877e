"""Helpers for testing agentlightning and its plugins: fixtures, conformance suites and fakes.

- :mod:`agentlightning.testing.store`: the store conformance suites, as test classes to subclass;
- :mod:`agentlightning.testing.pytest_plugin`: fixtures, loaded by pytest through core's ``pytest11`` entry point;
- :mod:`agentlightning.testing.openai_server`: a local OpenAI-compatible test server.

Importing this package pulls in nothing heavy; the conformance suites import pytest and hypothesis.
"""
