"""The browser fixtures of tests/admin/test_browser.py, for the rollouts browser tests."""

from tests.admin.test_browser import page, screenshots  # noqa: F401 -- fixtures
