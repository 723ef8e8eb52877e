"""Helpers for testing agentlightning and its plugins: fixtures, conformance suites and fakes.

Importing this package pulls in nothing heavy; the conformance suites import pytest and hypothesis.
"""
