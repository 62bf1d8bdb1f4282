"""Shared pytest set-up. Fixtures that start servers live in tests/fixtures/ and are
registered here; each starts its server itself and stops it by PID."""

pytest_plugins: list[str] = [
    "tests.fixtures.s3server",
    "tests.fixtures.chat_server",
    "tests.fixtures.hdfsserver",
]
