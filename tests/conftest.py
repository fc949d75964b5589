"""Shared fixtures. Each fixture module under tests/fixtures/ owns one real component."""

pytest_plugins = [
    "tests.fixtures.sandbox",
    "tests.fixtures.pebble",
]
