"""Test configuration: real services come from the fixture plugins below."""

pytest_plugins = ["tests.fix_db", "tests.fix_mqtt", "tests.fix_browser", "tests.fix_server"]
